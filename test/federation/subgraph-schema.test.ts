import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { printedSubgraphSchema, SUBGRAPH_SCHEMA_PATH } from '../../scripts/print-schema.ts';

describe('schema/subgraph.graphql', () => {
  it('is the SDL the code builds (run `npm run generate:schema` after changing the schema)', async () => {
    const committed = await readFile(SUBGRAPH_SCHEMA_PATH, 'utf8');
    expect(committed).toBe(printedSubgraphSchema());
  });

  it('is a Federation 2 subgraph with entities for jobs, frame jobs and nodes', () => {
    const sdl = printedSubgraphSchema();
    expect(sdl).toMatch(/@link\(url: "https:\/\/specs\.apollo\.dev\/federation\/v2\.\d+"/);
    for (const entity of ['RenderJob', 'FrameJob', 'RenderNode']) {
      expect(sdl).toMatch(new RegExp(`type ${entity}\\b[^{]*@key\\(fields: "id"\\)`));
    }
  });
});
