import { randomBytes, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/ports.ts';

export interface ObjectStoreUnderTest {
  store: ObjectStore;
  /** Lets the given time pass for the store: a controllable clock moves, or the test waits. */
  elapse(seconds: number): Promise<void>;
  dispose(): Promise<void>;
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** What every ObjectStore adapter must do alike, so that development behaves as production. */
export function describeObjectStoreContract(name: string, makeStore: () => Promise<ObjectStoreUnderTest>): void {
  describe(`${name}: ObjectStore contract`, () => {
    let subject: ObjectStoreUnderTest;
    let store: ObjectStore;
    const key = (file = 'video.mp4') => `exports/${randomUUID()}/${file}`;

    beforeAll(async () => {
      subject = await makeStore();
      store = subject.store;
    });
    afterAll(async () => {
      await subject?.dispose();
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('returns exactly the bytes that were put, with their content type and size', async () => {
      const k = key();
      const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);
      await store.put(k, bytes, 'video/mp4');
      const object = await store.get(k);
      expect(object).not.toBeNull();
      expect(object?.contentType).toBe('video/mp4');
      expect(object?.size).toBe(bytes.length);
      expect((await readAll(object!.body)).equals(bytes)).toBe(true);
    });

    it('stores strings as UTF-8 and accepts Uint8Array and empty bodies', async () => {
      const text = key('log.txt');
      await store.put(text, 'frame 1 ✓ rendu\n', 'text/plain; charset=utf-8');
      const textObject = await store.get(text);
      expect(textObject?.contentType).toBe('text/plain; charset=utf-8');
      expect((await readAll(textObject!.body)).toString('utf8')).toBe('frame 1 ✓ rendu\n');

      const array = key('frame.png');
      await store.put(array, new Uint8Array([137, 80, 78, 71, 0, 255]), 'image/png');
      expect([...(await readAll((await store.get(array))!.body))]).toEqual([137, 80, 78, 71, 0, 255]);

      const empty = key('empty.bin');
      await store.put(empty, Buffer.alloc(0), 'application/octet-stream');
      const emptyObject = await store.get(empty);
      expect(emptyObject?.size).toBe(0);
      expect((await readAll(emptyObject!.body)).length).toBe(0);
    });

    it('replaces an object and its content type on a second put', async () => {
      const k = key('preview');
      await store.put(k, 'first', 'text/plain');
      await store.put(k, Buffer.from([1, 2, 3]), 'application/octet-stream');
      const object = await store.get(k);
      expect(object?.contentType).toBe('application/octet-stream');
      expect([...(await readAll(object!.body))]).toEqual([1, 2, 3]);
    });

    it('returns null for a missing object and tells whether one exists', async () => {
      const k = key();
      expect(await store.get(k)).toBeNull();
      expect(await store.exists(k)).toBe(false);
      await store.put(k, 'x', 'text/plain');
      expect(await store.exists(k)).toBe(true);
    });

    it('deletes idempotently', async () => {
      const k = key();
      await store.put(k, 'x', 'text/plain');
      await store.delete(k);
      expect(await store.exists(k)).toBe(false);
      expect(await store.get(k)).toBeNull();
      await expect(store.delete(k)).resolves.toBeUndefined();
      await expect(store.delete(key())).resolves.toBeUndefined();
    });

    it('keeps sibling objects when one is deleted', async () => {
      const folder = `exports/${randomUUID()}`;
      await store.put(`${folder}/a.mp4`, 'a', 'video/mp4');
      await store.put(`${folder}/b.mp4`, 'b', 'video/mp4');
      await store.delete(`${folder}/a.mp4`);
      expect(await store.exists(`${folder}/b.mp4`)).toBe(true);
      expect((await readAll((await store.get(`${folder}/b.mp4`))!.body)).toString()).toBe('b');
    });

    it('serves the exact bytes over HTTP through a presigned URL, even for keys that need encoding', async () => {
      const k = key('my render — été #1.mp4');
      const bytes = randomBytes(64 * 1024);
      await store.put(k, bytes, 'video/mp4');
      const before = Date.now();
      const presigned = await store.presignGet(k, 600);
      expect(presigned.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 599_000);
      expect(presigned.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 601_000);
      const response = await fetch(presigned.url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('video/mp4');
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    });

    it('refuses a presigned URL once it has expired', async () => {
      const k = key();
      await store.put(k, 'soon gone', 'text/plain');
      const presigned = await store.presignGet(k, 1);
      expect((await fetch(presigned.url)).status).toBe(200);
      await subject.elapse(2);
      const response = await fetch(presigned.url);
      await response.arrayBuffer();
      expect(response.status).toBe(403);
    });

    it('answers 404 through a presigned URL once the object is deleted', async () => {
      const k = key();
      await store.put(k, 'deleted soon', 'text/plain');
      const presigned = await store.presignGet(k, 600);
      await store.delete(k);
      const response = await fetch(presigned.url);
      await response.arrayBuffer();
      expect(response.status).toBe(404);
    });

    it('refuses expiries that are not a whole number of seconds up to a week', async () => {
      const k = key();
      for (const seconds of [0, -1, 1.5, 7 * 24 * 3600 + 1, Number.NaN]) {
        await expect(store.presignGet(k, seconds)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
      }
    });
  });
}
