import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFolderObjectStore, type FolderObjectStore } from '../../src/adapters/storage/folder-store.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../src/domain/errors.ts';
import { controllableClock } from '../support/clock.ts';
import { describeObjectStoreContract, readAll } from './object-store-contract.ts';

const ROUTE = '/v1/objects/';

/** Stands in for the service's own download route, which maps domain errors the same way. */
async function serveSignedObjects(getStore: () => FolderObjectStore): Promise<{ baseUrl: string; server: Server }> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' || !url.pathname.startsWith(ROUTE)) {
      response.writeHead(404).end();
      return;
    }
    const key = url.pathname.slice(ROUTE.length).split('/').map(decodeURIComponent).join('/');
    const expires = url.searchParams.get('expires') ?? undefined;
    const signature = url.searchParams.get('signature') ?? undefined;
    getStore()
      .readSigned(key, expires, signature)
      .then((object) => {
        response.writeHead(200, { 'content-type': object.contentType, 'content-length': object.size });
        object.body.pipe(response);
      })
      .catch((error: unknown) => {
        const status = error instanceof ForbiddenError ? 403 : error instanceof NotFoundError ? 404 : 500;
        response.writeHead(status).end();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function makeFolderStore() {
  const root = await mkdtemp(path.join(tmpdir(), 'orchestrator-folder-store-'));
  const clock = controllableClock();
  let store: FolderObjectStore | undefined;
  const { baseUrl, server } = await serveSignedObjects(() => store!);
  store = createFolderObjectStore({ root, publicBaseUrl: `${baseUrl}/`, signingSecret: 'test-signing-secret', clock });
  return {
    store,
    root,
    clock,
    baseUrl,
    async dispose() {
      await store.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(root, { recursive: true, force: true });
    },
  };
}

describeObjectStoreContract('folder store', async () => {
  const made = await makeFolderStore();
  return {
    store: made.store,
    elapse: async (seconds) => made.clock.advance(seconds * 1000),
    dispose: made.dispose,
  };
});

describe('folder store', () => {
  let made: Awaited<ReturnType<typeof makeFolderStore>>;
  let store: FolderObjectStore;

  beforeAll(async () => {
    made = await makeFolderStore();
    store = made.store;
  });
  afterAll(async () => {
    await made?.dispose();
  });

  it('refuses keys that could leave the root, without touching the disk', async () => {
    const outside = path.join(path.dirname(made.root), `escaped-${randomUUID()}`);
    const badKeys = [
      '',
      `../${path.basename(outside)}`,
      `exports/../../${path.basename(outside)}`,
      '..',
      '.',
      'exports/./video.mp4',
      outside,
      '/etc/passwd',
      'exports\\..\\..\\evil',
      'exports//video.mp4',
      'exports/',
      'exports/video.mp4\0.txt',
      'x'.repeat(1025),
    ];
    for (const bad of badKeys) {
      await expect(store.put(bad, 'x', 'text/plain'), bad).rejects.toBeInstanceOf(ValidationError);
      await expect(store.get(bad), bad).rejects.toBeInstanceOf(ValidationError);
      await expect(store.exists(bad), bad).rejects.toBeInstanceOf(ValidationError);
      await expect(store.delete(bad), bad).rejects.toBeInstanceOf(ValidationError);
      await expect(store.presignGet(bad, 60), bad).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(stat(outside)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps objects as plain files and leaves no temporary file behind', async () => {
    const key = `exports/${randomUUID()}/video.mp4`;
    await store.put(key, Buffer.from([0, 1, 2, 255]), 'video/mp4');
    expect([...(await readFile(path.join(made.root, 'objects', key)))]).toEqual([0, 1, 2, 255]);
    expect(await readdir(path.join(made.root, 'tmp'))).toEqual([]);
  });

  it('prunes the folders that a delete leaves empty, and only those', async () => {
    const id = randomUUID();
    await store.put(`exports/${id}/a/video.mp4`, 'a', 'video/mp4');
    await store.put(`exports/${id}/b.mp4`, 'b', 'video/mp4');
    await store.delete(`exports/${id}/a/video.mp4`);
    expect(await readdir(path.join(made.root, 'objects', 'exports', id))).toEqual(['b.mp4']);
    expect(await readdir(path.join(made.root, 'meta', 'exports', id))).toEqual(['b.mp4']);
    await store.delete(`exports/${id}/b.mp4`);
    await expect(stat(path.join(made.root, 'objects', 'exports', id))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(path.join(made.root, 'meta', 'exports', id))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await stat(path.join(made.root, 'objects'))).isDirectory()).toBe(true);
  });

  it('refuses a key whose path collides with another object, changing nothing', async () => {
    const id = randomUUID();
    await store.put(`exports/${id}/video.mp4`, 'video', 'video/mp4');
    await expect(store.put(`exports/${id}/video.mp4/inner`, 'x', 'text/plain')).rejects.toBeInstanceOf(ConflictError);
    await expect(store.put(`exports/${id}`, 'x', 'text/plain')).rejects.toBeInstanceOf(ConflictError);
    expect(await store.exists(`exports/${id}`)).toBe(false);
    expect(await store.get(`exports/${id}`)).toBeNull();
    const kept = await store.get(`exports/${id}/video.mp4`);
    expect(kept?.contentType).toBe('video/mp4');
    expect((await readAll(kept!.body)).toString()).toBe('video');
    expect(await readdir(path.join(made.root, 'tmp'))).toEqual([]);
  });

  it('lets a reader finish an object that is deleted while it reads', async () => {
    const key = `exports/${randomUUID()}/video.mp4`;
    await store.put(key, 'still readable', 'video/mp4');
    const object = await store.get(key);
    await store.delete(key);
    expect((await readAll(object!.body)).toString()).toBe('still readable');
  });

  it('signs URLs for the service route and checks signature, key and expiry on read', async () => {
    const key = `exports/${randomUUID()}/video.mp4`;
    await store.put(key, 'signed', 'video/mp4');
    const { url } = await store.presignGet(key, 60);
    expect(url.startsWith(`${made.baseUrl}/v1/objects/${key}?expires=`)).toBe(true);
    const parsed = new URL(url);
    const expires = parsed.searchParams.get('expires') ?? undefined;
    const signature = parsed.searchParams.get('signature') ?? undefined;
    expect(signature).toMatch(/^[0-9a-f]{64}$/);

    expect((await readAll((await store.readSigned(key, expires, signature)).body)).toString()).toBe('signed');
    const flipped = `${signature!.slice(0, -1)}${signature!.endsWith('0') ? '1' : '0'}`;
    const refusals: [string, string | undefined, string | undefined][] = [
      [key, expires, undefined],
      [key, undefined, signature],
      [key, expires, flipped],
      [key, expires, signature!.toUpperCase()],
      [key, String(Number(expires) + 3600), signature],
      [`exports/${randomUUID()}/video.mp4`, expires, signature],
      [key, `${expires}0`, signature],
      [key, '-1', signature],
    ];
    for (const [k, e, s] of refusals) {
      await expect(store.readSigned(k, e, s)).rejects.toBeInstanceOf(ForbiddenError);
    }
  });

  it('does not let a key and an expiry be shifted into one another', async () => {
    const id = randomUUID();
    const { url } = await store.presignGet(`exports/${id}/part1`, 60);
    const parsed = new URL(url);
    const expires = parsed.searchParams.get('expires')!;
    const signature = parsed.searchParams.get('signature')!;
    await store.put(`exports/${id}/part`, 'other object', 'text/plain');
    const shifted = store.readSigned(`exports/${id}/part`, `1${expires}`, signature);
    await expect(shifted).rejects.toBeInstanceOf(ForbiddenError);
  });

  it('answers NotFoundError for a well signed URL of a missing object, ForbiddenError once expired', async () => {
    const key = `exports/${randomUUID()}/video.mp4`;
    const { url } = await store.presignGet(key, 5);
    const parsed = new URL(url);
    const expires = parsed.searchParams.get('expires') ?? undefined;
    const signature = parsed.searchParams.get('signature') ?? undefined;
    await expect(store.readSigned(key, expires, signature)).rejects.toEqual(new NotFoundError('object', key));
    made.clock.advance(6_000);
    await expect(store.readSigned(key, expires, signature)).rejects.toBeInstanceOf(ForbiddenError);
  });

  it('fails ping when the root is not writable', async () => {
    const file = path.join(made.root, `not-a-folder-${randomUUID()}`);
    await writeFile(file, 'x');
    const broken = createFolderObjectStore({ root: file, publicBaseUrl: made.baseUrl, signingSecret: 's' });
    await expect(broken.ping()).rejects.toMatchObject({ code: expect.stringMatching(/ENOTDIR|EEXIST/) });
  });
});
