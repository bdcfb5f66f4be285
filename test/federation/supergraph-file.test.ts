import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { composeSupergraph, SUPERGRAPH_PATH } from '../../scripts/compose-supergraph.ts';

describe('router/supergraph.graphql', () => {
  it('is what `npm run supergraph` composes from schema/subgraph.graphql and router/identity.graphql', async () => {
    expect(await readFile(SUPERGRAPH_PATH, 'utf8')).toBe(composeSupergraph());
  });
});
