// PostgreSQL stops answering without refusing: connections are taken and nothing comes back, as
// behind a network partition or from a server still starting under load. Requests then wait for
// a connection until a timeout, whichever one fires first (the pool's connect timeout or a
// transaction's wait to begin), and each must still be answered 503 with Retry-After, the way a
// stopped server is, so that agents retry instead of giving up on a 500. Nothing is written
// meanwhile, and the same requests succeed once the database answers again.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelRenderJobDocument } from '../generated/graphql.ts';
import { chunkOn, completeChunk, framesOf, preparedOn, reportFrames } from '../support/agent.ts';
import { type HttpAnswer, startTestApp, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { createTestDatabase } from '../support/database.ts';
import { renderBody, submitRender } from '../support/jobs.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let proxy: TcpProxy;
let t: TestApp;
let user: TestUser;
let node: TestNode;

beforeAll(async () => {
  database = await createTestDatabase();
  const url = new URL(database.url);
  proxy = await startTcpProxy(Number(url.port || 5432));
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  t = await startTestApp({ env: { DATABASE_URL: url.toString() }, startLoops: false });
  user = await t.user(100_000);
  node = await t.onlineNode('stalled-db');
});

afterAll(async () => {
  await t?.close();
  await proxy?.close();
  await database?.drop();
});

function expectUnavailable(answer: HttpAnswer): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(503);
  expect(answer.body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', details: {} });
  expect(answer.headers.get('retry-after')).toBe('2');
}

describe('a database that takes connections and never answers', () => {
  it('answers 503 on every door, writes nothing, and serves the same requests once it answers', { timeout: 60_000 }, async () => {
    const job = await submitRender(t, user.token, { duration_sec: 1 });
    await preparedOn(t, node, job.id);
    const chunk = await chunkOn(t, node);
    await reportFrames(t, node, job.id, chunk, framesOf(chunk));
    const completion = `/v1/internal/render/jobs/${job.id}/chunks/${chunk.frame_job_id}/complete`;

    proxy.stall();
    const [completed, submitted, cancelled] = await Promise.all([
      t.signed(node, 'POST', completion, { lease: chunk.lease }),
      t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ saved_project_id: randomUUID(), duration_sec: 1 }) }),
      t.gql(CancelRenderJobDocument, { id: job.id }, user.token),
    ]);
    expectUnavailable(completed);
    expectUnavailable(submitted);
    expect(cancelled.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
    proxy.resume();

    const prisma = t.app.services.db.prisma;
    expect(await prisma.renderJob.count({ where: { userId: user.id } })).toBe(1);
    expect(await prisma.renderJob.findUniqueOrThrow({ where: { id: job.id }, select: { step: true } })).toEqual({ step: 'Rendering' });
    // The agent's retry, signed anew as agents do, is the first the service hears of the completion.
    await completeChunk(t, node, job.id, chunk);
    expect(await prisma.frameJob.findUniqueOrThrow({ where: { id: chunk.frame_job_id as string }, select: { status: true } })).toEqual({
      status: 'Completed',
    });
  });
});
