// A replica commits a job's change and dies before the event reaches Redis: it has lost its Redis
// connection (the publish after commit is dropped, as it must be, so the caller is not told a
// saved change failed) and is then SIGKILLed. A subscriber on another replica, whose own bus never
// dropped, still gets the event, and in order: nothing later comes to show the gap, since the
// change ended the job.
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { TAIL_CHECK_MS } from '../../src/domain/jobs/job-events.ts';
import { serviceClient } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { auditSeqs, type Replicas, startReplicas, watchProgress } from '../support/replicas.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

let proxy: TcpProxy;
let replicas: Replicas;

beforeAll(async () => {
  const redis = new URL(inject('redisUrl'));
  proxy = await startTcpProxy(Number(redis.port || 6379));
  const proxied = new URL(redis);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  replicas = await startReplicas(2, { redisUrlOf: (index) => (index === 1 ? proxied.toString() : undefined) });
}, 90_000);

afterAll(async () => {
  await replicas?.close();
  await proxy?.close();
});

it('reaches a subscriber on another replica when the replica that committed it died before publishing', { timeout: 60_000 }, async () => {
  const [survivor, doomed] = replicas.urls.map((url) => serviceClient(url)) as [ReturnType<typeof serviceClient>, ReturnType<typeof serviceClient>];
  const user = await replicas.user(100_000);
  const job = await submitRender(survivor, user.token, { duration_sec: 1 });
  const watch = await watchProgress(replicas.urls[0] as string, user.token, job.id);

  proxy.stall();
  const cancelled = await doomed.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
  expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
  const committedAt = Date.now();
  await replicas.processes[1]?.kill();

  await watch.until((message) => message.step === 'Cancelled', 20_000);
  const waited = Date.now() - committedAt;
  const { eventSeq } = await replicas.db.prisma.renderJob.findUniqueOrThrow({ where: { id: job.id } });
  expect(auditSeqs(watch.received, eventSeq)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });
  expect(watch.errors).toEqual([]);
  // Two checks find the subscriber behind; one more allows for a check that was running already.
  expect(waited).toBeLessThan(3 * TAIL_CHECK_MS + 2_000);
  await watch.close();
});
