import { shutdownTelemetry } from './telemetry.ts';
import { ConfigError, loadConfig } from './config.ts';

// Only once tracing has started (telemetry.ts), so that its instrumentations see the modules load.
const { createApp } = await import('./app.ts');

try {
  const app = await createApp(loadConfig());
  const { port } = await app.listen();
  app.logger.info(
    { port, graphql: `${app.services.config.publicBaseUrl}/graphql`, rest: `${app.services.config.publicBaseUrl}/v1` },
    'Render orchestrator listening',
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'Shutting down: draining connections');
    await app.close();
    await shutdownTelemetry();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
