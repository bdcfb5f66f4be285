// Writes schema/subgraph.graphql: the federation SDL of the schema built in code, with its @link.
// A test fails when the committed file differs from what the code builds.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { printSubgraphSchema } from '@apollo/subgraph';
import { schema } from '../src/graphql/schema.ts';

export const SUBGRAPH_SCHEMA_PATH = fileURLToPath(new URL('../schema/subgraph.graphql', import.meta.url));

export function printedSubgraphSchema(): string {
  return `${printSubgraphSchema(schema).trim()}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(SUBGRAPH_SCHEMA_PATH, printedSubgraphSchema());
  process.stdout.write(`Wrote schema/subgraph.graphql\n`);
}
