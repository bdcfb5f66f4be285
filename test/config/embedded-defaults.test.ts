// The service on its embedded defaults (PGlite, in-process bus, folder object store), as a
// newcomer runs it, with the README's tour.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_ORDER } from '../../src/domain/work/recut.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ embedded: true });
}, 180_000);
afterAll(() => t?.close());

describe('embedded defaults', () => {
  it('uses PGlite, the in-process bus and the folder store, and is ready', async () => {
    expect(t.app.services.db.kind).toBe('pglite');
    expect((await t.rest('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await t.rest('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: { ok: true }, bus: { ok: true }, objects: { ok: true } });
  });

  it("runs the README's tour: a Free render over REST, then the caller's jobs over GraphQL", async () => {
    const token = await t.token(randomUUID());
    const submitted = await t.rest('POST', '/v1/renders', {
      token,
      body: {
        saved_project_id: '1b7c7c36-45a8-4b7e-9d42-3a5f9f2b8e10',
        quality: 'Low',
        resolution: 'HD',
        price_type: 'Free',
        duration_sec: 10,
      },
    });
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ step: 'Queued', price_type: 'Free', paid_price_minor: 0 });
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ renderJobs(first: 5) { edges { node { id step priceType } } } }' }),
    });
    expect(await response.json()).toEqual({
      data: { renderJobs: { edges: [{ node: { id: submitted.body.id, step: 'Queued', priceType: 'Free' } }] } },
    });
  });

  it("lists a job's chunks on PGlite as the database holds them", async () => {
    const token = await t.token(randomUUID());
    const submitted = await t.rest('POST', '/v1/renders', {
      token,
      body: { saved_project_id: randomUUID(), quality: 'Low', resolution: 'HD', price_type: 'Free', duration_sec: 10 },
    });
    expect(submitted.status).toBe(201);
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `{ renderJob(id: "${submitted.body.id}") { frameJobs { id startFrame endFrame status node { id } } } }` }),
    });
    const rows = await t.app.services.db.prisma.frameJob.findMany({ where: { renderJobId: submitted.body.id }, orderBy: CHUNK_ORDER });
    expect(rows.length).toBeGreaterThan(1);
    expect(await response.json()).toEqual({
      data: { renderJob: { frameJobs: rows.map((row) => ({ id: row.id, startFrame: row.startFrame, endFrame: row.endFrame, status: row.status, node: null })) } },
    });
  });

  it('serves folder-store objects through signed URLs that cannot be altered', async () => {
    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    const key = 'exports/tour/video file.mp4';
    await t.app.services.store.put(key, bytes, 'video/mp4');
    const { url } = await t.app.services.store.presignGet(key, 60);
    expect(url.startsWith(`${t.url}/v1/objects/`)).toBe(true);
    const download = await fetch(url);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);
    const tampered = await fetch(url.replace('video%20file', 'other'));
    expect(tampered.status).toBe(403);
    const unsigned = await fetch(url.split('?')[0] ?? '');
    expect(unsigned.status).toBe(403);
  });
});
