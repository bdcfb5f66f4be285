// The federated gateway in front of the render orchestrator: GraphQL Hive Gateway serving the
// supergraph that `npm run supergraph` composes (router/supergraph.graphql). One file for both ways
// it runs: docker-compose.yml mounts it into Hive Gateway's own image (its CLI reads
// `gatewayConfig`), and gateway/main.ts (`npm run gateway`, the tests, the benchmarks) hands it to
// the same gateway runtime. Only type imports, so the image needs nothing of this repository.
import type { GatewayConfigSupergraph, GatewayPlugin } from '@graphql-hive/gateway-runtime';

/**
 * The subgraph authenticates every operation itself, so each caller's own credential travels on:
 * on HTTP requests, and on the WebSocket that carries that caller's subscriptions (Hive Gateway
 * gives a WebSocket transport no headers unless told to). The gateway keeps one upstream socket per
 * distinct set of headers, so one user's subscriptions never ride on another's connection.
 */
const FORWARDED_HEADERS: [string, string][] = [['authorization', '{context.headers.authorization}']];

/**
 * A graphql-ws client puts its credential in connection_init's payload, which the gateway merges
 * into the operation's headers under the client's own spelling (`Authorization`, `authorization`).
 * Header names are case-insensitive everywhere else, so they are made lower-case here, before
 * anything reads them.
 */
const lowerCaseHeaders: GatewayPlugin = {
  onContextBuilding({ context, extendContext }) {
    const headers = (context as { headers?: Record<string, unknown> }).headers;
    if (!headers) return;
    extendContext({ headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])) } as never);
  },
};

export const gatewayConfig: GatewayConfigSupergraph = {
  supergraph: process.env.SUPERGRAPH ?? './supergraph.graphql',
  transportEntries: {
    '*.http': {
      headers: FORWARDED_HEADERS,
      options: {
        // Subscriptions go to the subgraph over graphql-ws, on the same /graphql path.
        subscriptions: { kind: 'ws', location: '/graphql', headers: FORWARDED_HEADERS },
      },
    },
  },
  plugins: () => [lowerCaseHeaders],
  // Admins have the subgraph's own playground (/playground); the gateway answers GraphQL only.
  graphiql: false,
  landingPage: false,
};
