import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createS3ObjectStore } from '../../src/adapters/storage/s3-store.ts';
import type { ObjectStore } from '../../src/ports.ts';
import { describeObjectStoreContract, readAll } from './object-store-contract.ts';

const s3 = inject('s3');

describeObjectStoreContract('S3 store (s3rver)', async () => {
  const store = await createS3ObjectStore(s3);
  return {
    store,
    // s3rver checks expiry against its own clock, so the time really has to pass.
    elapse: (seconds) => sleep(seconds * 1000),
    dispose: () => store.close(),
  };
});

describe('S3 store', () => {
  const opened: ObjectStore[] = [];
  const open = async (...args: Parameters<typeof createS3ObjectStore>) => {
    const store = await createS3ObjectStore(...args);
    opened.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.all(opened.map((store) => store.close()));
  });

  let store: ObjectStore;
  beforeAll(async () => {
    store = await open(s3);
  });

  it('creates its bucket when it does not exist, and accepts one that already does', async () => {
    const bucket = `auto-${randomUUID()}`;
    const first = await open({ ...s3, bucket });
    await first.put('exports/x/video.mp4', 'in a new bucket', 'video/mp4');
    await expect(first.ping()).resolves.toBeUndefined();
    const second = await open({ ...s3, bucket });
    expect((await readAll((await second.get('exports/x/video.mp4'))!.body)).toString()).toBe('in a new bucket');
  });

  it('signs presigned URLs for the public endpoint when one is given', async () => {
    const port = new URL(s3.endpoint).port;
    const publicEndpoint = `http://localhost:${port}`;
    const publicStore = await open(s3, { publicEndpoint });
    const key = `exports/${randomUUID()}/video.mp4`;
    await publicStore.put(key, 'through the public endpoint', 'video/mp4');
    const { url } = await publicStore.presignGet(key, 60);
    expect(url.startsWith(`${publicEndpoint}/${s3.bucket}/exports/`)).toBe(true);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('through the public endpoint');
    expect((await store.presignGet(key, 60)).url.startsWith(`${s3.endpoint}/`)).toBe(true);
  });

  it('fails to start, rather than later, when S3 refuses the credentials', async () => {
    // HeadBucket's answer has no body, so the status is all there is to tell the error by.
    await expect(createS3ObjectStore({ ...s3, accessKeyId: 'UNKNOWN' })).rejects.toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
  });
});
