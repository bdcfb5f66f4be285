// The number of SQL statements a listing of render jobs costs does not grow with the page: jobs
// with their chunks and nodes, or with the nodes that failed them, through GraphQL, and jobs over
// REST. Half the 50 jobs have a chunk on a node and that node's failures, written directly (see
// test/support/rows.ts). Nor does a listing of nodes with the chunk each holds grow with the nodes.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RenderJobsWithChunkNodeNamesDocument, RenderJobsWithChunksDocument, RenderJobsWithNodeBlocksDocument, RenderNodesWithCurrentFrameJobDocument } from '../generated/graphql.ts';
import { startTestApp, TEST_ADMIN, type TestApp, type TestNode, type TestUser, userActor } from '../support/app.ts';
import { holdChunks, jobFailures } from '../support/rows.ts';
import { statementsDuring } from '../support/statements.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

async function statementsFor(request: () => Promise<unknown>): Promise<number> {
  return (await statementsOf(request)).length;
}

const statementsOf = (request: () => Promise<unknown>) => statementsDuring(t, request);

const readsNodes = (statements: string[]) => statements.filter((sql) => /\bFROM\s+"public"\."render_nodes"/i.test(sql)).length;

describe('SQL statements per listing', () => {
  let owner: TestUser;
  let node: TestNode;
  beforeAll(async () => {
    owner = await t.user(10_000);
    const actor = userActor(owner.id);
    node = await t.node('n-plus-one');
    for (let index = 0; index < 50; index++) {
      // 60 s jobs: several chunks each.
      const job = await jobs().submit(actor, { savedProjectId: randomUUID(), quality: 'Low', resolution: 'HD', durationSec: 60, name: `Listed ${index}` });
      if (index % 2 === 0) {
        const [chunk] = await prisma().frameJob.findMany({ where: { renderJobId: job.id }, orderBy: { orderValue: 'asc' }, take: 1 });
        await holdChunks(t, [{ chunkId: chunk!.id, nodeId: node.id, status: 'Assigned' }]);
        await jobFailures(t, job.id, node.id, 3, new Date());
      }
    }
  }, 120_000);

  it('lists jobs with their chunks and nodes through GraphQL in the same number of statements for 5, 20 and 50', async () => {
    const counts: Record<number, number> = {};
    for (const first of [5, 20, 50]) {
      let answer: any;
      counts[first] = await statementsFor(async () => {
        answer = await t.gql(RenderJobsWithChunksDocument, { first }, admin);
      });
      expect(answer?.errors).toBeUndefined();
      const edges = answer?.data.renderJobs.edges as Array<{ node: { id: string; frameJobs: Array<{ id: string; node: { id: string } | null }> } }>;
      expect(edges).toHaveLength(first);
      expect(edges.every((edge) => edge.node.frameJobs.length > 0)).toBe(true);
      if (first === 50) {
        const withNode = edges.filter((edge) => edge.node.frameJobs.some((chunk) => chunk.node !== null));
        expect(withNode.length).toBeGreaterThanOrEqual(25);
      }
    }
    expect(counts[5]).toBeGreaterThan(0);
    expect(counts, JSON.stringify(counts)).toEqual({ 5: counts[5], 20: counts[5], 50: counts[5] });
  });

  it('lists jobs with the nodes that failed them through GraphQL in the same number of statements for 5, 20 and 50', async () => {
    const counts: Record<number, number> = {};
    for (const first of [5, 20, 50]) {
      let answer: any;
      counts[first] = await statementsFor(async () => {
        answer = await t.gql(RenderJobsWithNodeBlocksDocument, { first }, admin);
      });
      expect(answer?.errors).toBeUndefined();
      const edges = answer?.data.renderJobs.edges as Array<{ node: { nodeBlocks: Array<{ failures: number; node: { id: string } | null }> } }>;
      expect(edges).toHaveLength(first);
      const blocks = edges.flatMap((edge) => edge.node.nodeBlocks);
      expect(blocks.length).toBeGreaterThanOrEqual(Math.floor(first / 2));
      expect(blocks.every((block) => block.failures === 3 && block.node !== null)).toBe(true);
    }
    expect(counts[5]).toBeGreaterThan(0);
    expect(counts, JSON.stringify(counts)).toEqual({ 5: counts[5], 20: counts[5], 50: counts[5] });
  });

  it("reads render_nodes for a chunk's or a failure's node only when an admin asks more of it than its id", async () => {
    let ids: any;
    const idsOnly = await statementsOf(async () => {
      ids = await t.gql(RenderJobsWithChunksDocument, { first: 50 }, admin);
    });
    expect(readsNodes(idsOnly)).toBe(0);
    const held = (ids.data.renderJobs.edges as Array<{ node: { frameJobs: Array<{ node: { id: string } | null }> } }>).flatMap((edge) => edge.node.frameJobs.filter((chunk) => chunk.node));
    expect(held).toHaveLength(25);
    expect(held.every((chunk) => chunk.node!.id === node.id)).toBe(true);

    let named: any;
    const withNames = await statementsOf(async () => {
      named = await t.gql(RenderJobsWithChunkNodeNamesDocument, { first: 50 }, admin);
    });
    expect(named.errors).toBeUndefined();
    // The chunks' nodes and the failures' nodes, read together.
    expect(readsNodes(withNames)).toBe(1);
    const edges = named.data.renderJobs.edges as Array<{ node: { frameJobs: Array<{ node: { name: string } | null }>; nodeBlocks: Array<{ node: { name: string } | null }> } }>;
    const nodes = edges.flatMap((edge) => [...edge.node.frameJobs, ...edge.node.nodeBlocks].flatMap((row) => (row.node ? [row.node] : [])));
    expect(nodes).toHaveLength(50);
    expect(nodes.every((shown) => shown.name === node.name)).toBe(true);

    let asOwner: any;
    const ownerStatements = await statementsOf(async () => {
      asOwner = await t.gql(RenderJobsWithChunkNodeNamesDocument, { first: 50 }, owner.token);
    });
    expect(asOwner.errors).toBeUndefined();
    expect(readsNodes(ownerStatements)).toBe(0);
    const ownerEdges = asOwner.data.renderJobs.edges as Array<{ node: { frameJobs: Array<{ node: unknown }>; nodeBlocks: Array<{ node: unknown }> } }>;
    expect(ownerEdges).toHaveLength(50);
    expect(ownerEdges.every((edge) => [...edge.node.frameJobs, ...edge.node.nodeBlocks].every((row) => row.node === null))).toBe(true);
  });

  it('lists jobs over REST in the same number of statements for page_size 5 and 50', async () => {
    const counts: number[] = [];
    for (const size of [5, 50]) {
      let answer: any;
      counts.push(
        await statementsFor(async () => {
          answer = await t.rest('GET', `/v1/renders?page_size=${size}`, { token: admin });
        }),
      );
      expect(answer.status).toBe(200);
      expect(answer.body.data).toHaveLength(size);
    }
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBe(counts[0]);
  });
});

describe('SQL statements per node listing', () => {
  const regions = { few: `few-${randomUUID().slice(0, 8)}`, many: `many-${randomUUID().slice(0, 8)}` };

  beforeAll(async () => {
    const actor = userActor((await t.user(10_000)).id);
    const chunks: Array<{ id: string }> = [];
    while (chunks.length < 11) {
      const job = await jobs().submit(actor, { savedProjectId: randomUUID(), quality: 'Low', resolution: 'HD', durationSec: 60 });
      chunks.push(...(await prisma().frameJob.findMany({ where: { renderJobId: job.id }, select: { id: true } })));
    }
    const holds: Parameters<typeof holdChunks>[1] = [];
    for (const [region, count] of [[regions.few, 2], [regions.many, 20]] as const) {
      for (let index = 0; index < count; index++) {
        const { node } = await t.app.services.nodes.register(TEST_ADMIN, { name: `${region}-${index}`, region, nodeIp: '10.0.0.3', workerPort: 9000, currentAeVersion: '24.1' });
        // Every other node holds a chunk.
        const chunk = index % 2 === 0 ? chunks.pop() : undefined;
        if (chunk) holds.push({ chunkId: chunk.id, nodeId: node.id, status: index % 4 === 0 ? 'Assigned' : 'Rendering' });
      }
    }
    await holdChunks(t, holds);
  }, 60_000);

  it('lists nodes with the chunk each holds in the same number of statements for 2 and 20 nodes', async () => {
    const counts: Record<string, number> = {};
    for (const [size, region] of Object.entries(regions)) {
      let answer: any;
      counts[size] = await statementsFor(async () => {
        answer = await t.gql(RenderNodesWithCurrentFrameJobDocument, { region }, admin);
      });
      expect(answer?.errors).toBeUndefined();
      const nodes = answer?.data.renderNodes as Array<{ currentFrameJob: { status: string } | null }>;
      expect(nodes).toHaveLength(size === 'few' ? 2 : 20);
      expect(nodes.filter((node) => node.currentFrameJob !== null)).toHaveLength(nodes.length / 2);
    }
    expect(counts.few).toBeGreaterThan(0);
    expect(counts, JSON.stringify(counts)).toEqual({ few: counts.few, many: counts.few });
  });
});
