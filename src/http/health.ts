import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.ts';

const READINESS_TIMEOUT_MS = 2000;

async function check(name: string, probe: () => Promise<void>): Promise<[string, { ok: boolean; error?: string }]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
      }),
    ]);
    return [name, { ok: true }];
  } catch (error) {
    return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }];
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: FastifyInstance, services: Services): void {
  // Liveness: the process answers. Nothing external is checked, so a database outage does not
  // make an orchestrator restart loop.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Readiness: every backend this replica needs answers, so a load balancer can route around it.
  app.get('/readyz', async (_request, reply) => {
    const checks = Object.fromEntries(
      await Promise.all([
        check('database', () => services.db.ping()),
        check('bus', () => services.bus.ping()),
        check('objects', () => services.store.ping()),
      ]),
    );
    const ready = Object.values(checks).every((result) => result.ok);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
}
