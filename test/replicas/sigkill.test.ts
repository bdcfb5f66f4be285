// Issue #7: a replica is killed with SIGKILL under load. Three service processes share one
// PostgreSQL and Redis; a third of the way into the frames one of them dies mid-request. Agents
// that get no answer send their request again to another replica, as the agent protocol asks.
// Afterwards no frame is lost or accepted twice, no job is charged twice, every job completes,
// and the subscriber on a surviving replica missed no progress event.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startReplicas, type Replicas } from '../support/replicas.ts';
import { expectSound } from './render-on-replicas-checks.ts';
import { renderOnReplicas } from './render-on-replicas.ts';

let replicas: Replicas;

beforeAll(async () => {
  replicas = await startReplicas(3);
}, 90_000);
afterAll(async () => {
  await replicas?.close();
});

it('loses no frame, accepts none twice and charges no job twice when a replica is SIGKILLed mid-run', { timeout: 90_000 }, async () => {
  const outcome = await renderOnReplicas(replicas, { seed: 47, killReplica: { index: 2, afterFrames: 100 } });
  const counts = expectSound(outcome);
  console.log(`replicas sigkill: ${JSON.stringify({ ...counts, killedAfterFrames: outcome.killedAfterFrames, agentRetries: outcome.retries })}`);
  expect(outcome.killedAfterFrames).toBeGreaterThanOrEqual(100);
  expect(outcome.retries).toBeGreaterThan(0);
});
