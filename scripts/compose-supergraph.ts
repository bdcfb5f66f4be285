// Writes router/supergraph.graphql, the schema the Apollo Router of docker-compose.yml serves:
// this subgraph (schema/subgraph.graphql) composed with the identity subgraph
// (router/identity.graphql) by @apollo/composition, with the routing URLs of the compose network.
// A test fails when the committed file differs from what this composes.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { parseCommandLine, usageError } from './lib/command-line.ts';
import { SUBGRAPH_SCHEMA_PATH } from './print-schema.ts';

export const IDENTITY_SCHEMA_PATH = fileURLToPath(new URL('../router/identity.graphql', import.meta.url));
export const SUPERGRAPH_PATH = fileURLToPath(new URL('../router/supergraph.graphql', import.meta.url));

/** Where the router reaches each subgraph: compose service names (see docker-compose.yml). */
export const ROUTING_URLS = {
  identity: 'http://identity:4000/graphql',
  render: 'http://render-orchestrator:4000/graphql',
};

/** The supergraph SDL of the two subgraphs at the given routing URLs. */
export function composeSupergraph(urls: Record<keyof typeof ROUTING_URLS, string> = ROUTING_URLS): string {
  const composed = composeServices([
    { name: 'identity', typeDefs: parse(readFileSync(IDENTITY_SCHEMA_PATH, 'utf8')), url: urls.identity },
    { name: 'render', typeDefs: parse(readFileSync(SUBGRAPH_SCHEMA_PATH, 'utf8')), url: urls.render },
  ]);
  if (composed.errors) throw new Error(`The supergraph does not compose:\n${composed.errors.map((error) => error.message).join('\n')}`);
  return `${composed.supergraphSdl.trim()}\n`;
}

const USAGE = `Usage: npm run supergraph [-- --render URL] [--identity URL] [--out FILE]

Composes this subgraph (schema/subgraph.graphql) with the identity subgraph into a supergraph.
Without options it writes router/supergraph.graphql, the one docker-compose.yml's gateway serves,
with the compose network's URLs. With them it writes one for subgraphs elsewhere, e.g. a gateway
on a laptop in front of \`npm start\`:

  npm run supergraph -- --render http://localhost:4000/graphql --identity http://localhost:4001/graphql --out local.graphql
`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const values = parseCommandLine(USAGE, { render: { type: 'string' }, identity: { type: 'string' }, out: { type: 'string' } });
  for (const name of ['render', 'identity'] as const) {
    const url = values[name];
    if (url !== undefined && !URL.canParse(url)) usageError(USAGE, `--${name}: not a URL "${url}"`);
  }
  const out = values.out ?? SUPERGRAPH_PATH;
  await writeFile(out, composeSupergraph({ render: values.render ?? ROUTING_URLS.render, identity: values.identity ?? ROUTING_URLS.identity }));
  process.stdout.write(`Wrote ${values.out ?? 'router/supergraph.graphql'}\n`);
}
