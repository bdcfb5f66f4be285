// The federated gateway as a Node.js program: Hive Gateway's runtime with gateway.config.ts behind
// node:http, and graphql-ws on the same path for subscriptions. `npm run gateway` starts it; the
// gateway tests and benchmarks run exactly this file. PORT and HOST are read as Hive Gateway's own
// CLI reads them, so the same settings work for docker-compose's gateway.
import { createServer } from 'node:http';
import { createGatewayRuntime, getGraphQLWSOptions } from '@graphql-hive/gateway-runtime';
import { type Extra, useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { ensurePortFree, explainListenError, PortUnavailableError } from '../src/port.ts';
import { gatewayConfig } from './gateway.config.ts';

/** How long open requests may take to finish on SIGTERM before their connections are cut. */
const DRAIN_MS = 10_000;

const port = Number(process.env.PORT ?? 4000);
const host = process.env.HOST ?? '0.0.0.0';

function cannotStart(error: unknown): never {
  const reason = error instanceof PortUnavailableError ? error.message : `The gateway could not start: ${error instanceof Error ? error.message : String(error)}`;
  process.stderr.write(`${reason}\n`);
  process.exit(1);
}

// Before the servers exist: graphql-ws would otherwise log a taken port as its own internal
// error, with a stack, ahead of the one line that says what to do.
await ensurePortFree({ port, host }).catch(cannotStart);

const runtime = createGatewayRuntime(gatewayConfig);
const server = createServer(runtime);
const sockets = new WebSocketServer({ server, path: runtime.graphqlEndpoint });
const subscriptions = useServer(
  getGraphQLWSOptions(runtime, (ctx) => {
    const { request, socket } = ctx.extra as Extra;
    return { req: request, socket };
  }),
  sockets,
);

server.once('error', (error: Error) => cannotStart(explainListenError(error, { port, host })));
server.listen(port, host, () => {
  const address = server.address();
  const listening = typeof address === 'object' && address ? address.port : port;
  runtime.logger.info(`Gateway listening on http://${host === '0.0.0.0' ? 'localhost' : host}:${listening}${runtime.graphqlEndpoint} (HTTP and graphql-ws)`);
});

// Neither node:http nor the runtime stops on a signal by itself: without this, SIGTERM from an
// orchestrator would kill subscriptions mid-message instead of closing them cleanly.
let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  runtime.logger.info(`${signal}: closing subscriptions and draining requests`);
  const cut = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
  cut.unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // Closes every client socket (1001 Going Away), which ends their upstream subscriptions.
  await subscriptions.dispose();
  await new Promise<void>((resolve) => sockets.close(() => resolve()));
  await closed;
  await runtime.dispose();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
