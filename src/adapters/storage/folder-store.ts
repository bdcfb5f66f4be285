import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../domain/errors.ts';
import type { DownloadStore } from '../../domain/exports/download-name.ts';
import { systemClock, type Clock, type StoredObject } from '../../ports.ts';

export interface FolderObjectStoreOptions {
  root: string;
  /** The service's own public URL; presigned URLs point at its `/v1/objects/...` route. */
  publicBaseUrl: string;
  signingSecret: string;
  clock?: Clock;
}

/** The `disposition` and `disposition_signature` of a presigned URL that names its download. */
export interface SignedDisposition {
  value?: string;
  signature?: string;
}

export interface FolderObjectStore extends DownloadStore {
  /**
   * Serves a presigned URL: checks its signature and expiry, then reads the object, with the
   * Content-Disposition the URL names when its own signature holds.
   */
  readSigned(
    key: string,
    expires: string | undefined,
    signature: string | undefined,
    disposition?: SignedDisposition,
  ): Promise<StoredObject & { contentDisposition?: string }>;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const SIGNATURE = /^[0-9a-f]{64}$/;
const MAX_EXPIRES_IN_SECONDS = 7 * 24 * 3600;
// A rename into a directory that a concurrent delete has just pruned fails with ENOENT; the
// directory is recreated and the rename tried again.
const MOVE_ATTEMPTS = 5;

/**
 * Objects as plain files under `<root>/objects/<key>` and their content types under
 * `<root>/meta/<key>`, both written to `<root>/tmp` first and renamed into place, so a reader
 * never sees a partly written file. Keys are checked so that none can reach outside the root.
 */
export function createFolderObjectStore(options: FolderObjectStoreOptions): FolderObjectStore {
  const root = path.resolve(options.root);
  const objectsDir = path.join(root, 'objects');
  const metaDir = path.join(root, 'meta');
  const tmpDir = path.join(root, 'tmp');
  const publicBaseUrl = options.publicBaseUrl.replace(/\/+$/, '');
  const clock = options.clock ?? systemClock;

  const sign = (...parts: string[]) => createHmac('sha256', options.signingSecret).update(parts.join('\n')).digest();
  const holds = (signature: string, ...parts: string[]) => timingSafeEqual(Buffer.from(signature, 'hex'), sign(...parts));

  const writeTemp = async (data: Buffer | Uint8Array | string): Promise<string> => {
    await mkdir(tmpDir, { recursive: true });
    const file = path.join(tmpDir, `${randomUUID()}.tmp`);
    try {
      await writeFile(file, data, { flag: 'wx' });
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    }
    return file;
  };

  const moveIntoPlace = async (key: string, from: string, to: string) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await mkdir(path.dirname(to), { recursive: true });
        await rename(from, to);
        return;
      } catch (error) {
        if (isCode(error, 'ENOENT') && attempt < MOVE_ATTEMPTS) continue;
        await rm(from, { force: true });
        if (isCode(error, 'EEXIST', 'ENOTDIR', 'EISDIR')) {
          throw new ConflictError(`Object key ${key} collides with another object's path`, { key });
        }
        throw error;
      }
    }
  };

  const pruneEmptyParents = async (top: string, file: string) => {
    for (let dir = path.dirname(file); dir !== top && dir.startsWith(top); dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
    }
  };

  const get = async (key: string): Promise<StoredObject | null> => {
    checkKey(key);
    let handle;
    try {
      handle = await open(path.join(objectsDir, key), 'r');
    } catch (error) {
      if (isCode(error, 'ENOENT', 'ENOTDIR')) return null;
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) {
        await handle.close();
        return null;
      }
      const contentType = await readContentType(path.join(metaDir, key));
      // The open handle keeps the bytes readable even if the object is replaced or deleted now.
      return { body: handle.createReadStream(), contentType, size: info.size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  };

  return {
    async put(key, body, contentType) {
      checkKey(key);
      const metaTemp = await writeTemp(JSON.stringify({ contentType }));
      // The content type lands first so that a new object never shows without it.
      await moveIntoPlace(key, metaTemp, path.join(metaDir, key));
      const bodyTemp = await writeTemp(body);
      await moveIntoPlace(key, bodyTemp, path.join(objectsDir, key));
    },

    get,

    async delete(key) {
      checkKey(key);
      const objectFile = path.join(objectsDir, key);
      const metaFile = path.join(metaDir, key);
      await rm(objectFile, { force: true });
      await rm(metaFile, { force: true });
      await pruneEmptyParents(objectsDir, objectFile);
      await pruneEmptyParents(metaDir, metaFile);
    },

    async exists(key) {
      checkKey(key);
      try {
        return (await stat(path.join(objectsDir, key))).isFile();
      } catch (error) {
        if (isCode(error, 'ENOENT', 'ENOTDIR')) return false;
        throw error;
      }
    },

    async presignGet(key, expiresInSeconds, { contentDisposition } = {}) {
      checkKey(key);
      checkExpiresIn(expiresInSeconds);
      // Rounded up to whole seconds so the URL lives at least as long as asked.
      const expires = String(Math.ceil(clock.now().getTime() / 1000 + expiresInSeconds));
      const query = new URLSearchParams({ expires, signature: sign(key, expires).toString('hex') });
      // The name is signed apart from the read: a server that does not name downloads still
      // serves the URL, and nobody can change the name without the secret.
      if (contentDisposition !== undefined) {
        query.set('disposition', contentDisposition);
        query.set('disposition_signature', sign(key, expires, contentDisposition).toString('hex'));
      }
      const encodedKey = key.split('/').map(encodeURIComponent).join('/');
      return { url: `${publicBaseUrl}/v1/objects/${encodedKey}?${query}`, expiresAt: new Date(Number(expires) * 1000) };
    },

    async readSigned(key, expires, signature, disposition = {}) {
      if (expires === undefined || !/^\d{1,15}$/.test(expires)) {
        throw new ForbiddenError('Missing or malformed expires');
      }
      if (signature === undefined || !SIGNATURE.test(signature)) {
        throw new ForbiddenError('Missing or malformed signature');
      }
      if (!holds(signature, key, expires)) throw new ForbiddenError('Invalid signature');
      const contentDisposition = disposition.value;
      if (contentDisposition !== undefined) {
        const given = disposition.signature;
        if (given === undefined || !SIGNATURE.test(given) || !holds(given, key, expires, contentDisposition)) {
          throw new ForbiddenError('Invalid disposition signature');
        }
      }
      if (clock.now().getTime() > Number(expires) * 1000) throw new ForbiddenError('This link has expired');
      const object = await get(key);
      if (object === null) throw new NotFoundError('object', key);
      return contentDisposition === undefined ? object : { ...object, contentDisposition };
    },

    async ping() {
      const probe = await writeTemp('');
      await rm(probe);
    },

    async close() {},
  };
}

function checkKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new ValidationError('Invalid object key', [{ path: 'key', message: problem }]);
}

function keyProblem(key: string): string | undefined {
  if (key.length === 0 || key.length > 1024) return 'must be 1 to 1024 characters long';
  if (key.includes('\\') || key.includes('\0')) return 'must not contain backslashes or NUL characters';
  if (key.startsWith('/')) return 'must be key';
  for (const segment of key.split('/')) {
    if (segment === '') return 'must not contain empty segments';
    if (segment === '.' || segment === '..') return 'must not contain . or .. segments';
  }
  return undefined;
}

function checkExpiresIn(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_EXPIRES_IN_SECONDS) {
    throw new ValidationError('Invalid expiry', [
      { path: 'expiresInSeconds', message: `must be a whole number of seconds from 1 to ${MAX_EXPIRES_IN_SECONDS}` },
    ]);
  }
}

async function readContentType(file: string): Promise<string> {
  try {
    const meta: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof meta === 'object' && meta !== null && 'contentType' in meta && typeof meta.contentType === 'string') {
      return meta.contentType;
    }
    return DEFAULT_CONTENT_TYPE;
  } catch (error) {
    if (isCode(error, 'ENOENT', 'ENOTDIR')) return DEFAULT_CONTENT_TYPE;
    throw error;
  }
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' && codes.includes(error.code);
}
