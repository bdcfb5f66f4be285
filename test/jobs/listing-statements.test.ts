// The number of SQL statements a listing of render jobs costs does not grow with the page: jobs
// with their chunks and nodes through GraphQL, and jobs over REST. Half the 50 jobs have a chunk
// on a node, placed directly (see test/support/rows.ts).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RenderJobsWithChunksDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp, userActor } from '../support/app.ts';
import { holdChunks } from '../support/rows.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

describe('SQL statements per listing', () => {
  beforeAll(async () => {
    const user = await t.user(10_000);
    const actor = userActor(user.id);
    const node = await t.node('n-plus-one');
    for (let index = 0; index < 50; index++) {
      // 60 s jobs: several chunks each.
      const job = await jobs().submit(actor, { savedProjectId: randomUUID(), quality: 'Low', resolution: 'HD', durationSec: 60, name: `Listed ${index}` });
      if (index % 2 === 0) {
        const [chunk] = await prisma().frameJob.findMany({ where: { renderJobId: job.id }, orderBy: { orderValue: 'asc' }, take: 1 });
        await holdChunks(t, [{ chunkId: chunk!.id, nodeId: node.id, status: 'Assigned' }]);
      }
    }
  }, 120_000);

  async function statementsFor(request: () => Promise<unknown>): Promise<number> {
    let count = 0;
    const off = t.app.services.db.onQuery(() => count++);
    try {
      await request();
    } finally {
      off();
    }
    return count;
  }

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
