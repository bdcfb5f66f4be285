import { shutdownTelemetry } from './telemetry.ts';
import { ConfigError, loadConfig } from './config.ts';
import { ensurePortFree, explainListenError, PortUnavailableError } from './port.ts';
import { stopOnSignals } from './signals.ts';

// Only once tracing has started (telemetry.ts), so that its instrumentations see the modules load.
const { createApp } = await import('./app.ts');

/** Settings the person starting the service must change get one line each on stderr, no stack trace. */
function refuseToStart(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function start() {
  const config = loadConfig();
  // Before the embedded database is created or migrated, so that a port in use leaves nothing behind.
  await ensurePortFree(config);
  const app = await createApp(config);
  const { port } = await app.listen().catch((error: unknown) => {
    throw explainListenError(error, config);
  });
  return { app, port, base: config.publicBaseUrl };
}

const { app, port, base } = await start().catch((error: unknown) => {
  if (error instanceof ConfigError) refuseToStart(2, error.message);
  if (error instanceof PortUnavailableError) refuseToStart(1, error.message);
  throw error;
});
const doors = {
  console: `${base}/console`,
  playground: `${base}/playground`,
  docs: `${base}/v1/docs`,
  metrics: `${base}/metrics`,
  graphql: `${base}/graphql`,
  graphqlWs: `${base.replace(/^http/, 'ws')}/graphql`,
  rest: `${base}/v1`,
};
// The message itself names where to go, because a newcomer reads the message and skims the fields.
app.logger.info(
  { port, ...doors },
  `Render orchestrator listening: console ${doors.console} · playground ${doors.playground} · REST docs ${doors.docs} · metrics ${doors.metrics}`,
);

stopOnSignals(
  async (signal) => {
    app.logger.info({ signal }, 'Shutting down: draining connections');
    try {
      await app.close();
      await shutdownTelemetry();
    } catch (error) {
      app.logger.error({ err: error }, 'Shutting down failed');
      process.exit(1);
    }
    app.logger.info('Stopped');
    process.exit(0);
  },
  (signal) => app.logger.warn({ signal }, 'Stopping now, without waiting for open connections: the signal came again'),
);
