// Three service processes on one PostgreSQL and one Redis, a simulated fleet spread over them:
// no chunk is handed to two nodes, every frame is accepted exactly once, every job is charged
// once and completes, and a subscriber on one replica misses no progress event of any job.
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

it('renders on three replicas with no chunk assigned twice, no frame accepted twice and no progress event missed', { timeout: 90_000 }, async () => {
  const outcome = await renderOnReplicas(replicas, { seed: 31 });
  const counts = expectSound(outcome);
  console.log(`replicas fleet: ${JSON.stringify(counts)}`);
  expect(outcome.killedAfterFrames).toBeNull();
});
