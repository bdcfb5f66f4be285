// A job's chunks as GraphQL lists them: read beside Prisma with the columns the request selects
// (through fragments and aliases too), they answer what the database holds, field by field, and
// every FrameJob field says what it reads.
import { randomUUID } from 'node:crypto';
import { isObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_ORDER } from '../../src/domain/work/recut.ts';
import { chunkPropertiesOf } from '../../src/graphql/render-job.ts';
import { schema } from '../../src/graphql/schema.ts';
import { RenderJobChunksEveryFieldDocument, RenderJobChunkStartsDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp, type TestNode, type TestUser, userActor } from '../support/app.ts';
import { chunkOnLaterAttempt, holdChunks } from '../support/rows.ts';
import { statementsDuring } from '../support/statements.ts';

let t: TestApp;
let admin: string;
let owner: TestUser;
let node: TestNode;
let jobId: string;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
  owner = await t.user(10_000);
  node = await t.node('chunk-listing');
  // 60 s: several chunks, one held by the node, one on a later attempt.
  const job = await t.app.services.jobs.submit(userActor(owner.id), { savedProjectId: randomUUID(), quality: 'Low', resolution: 'HD', durationSec: 60 });
  jobId = job.id;
  const [first, second] = await prisma().frameJob.findMany({ where: { renderJobId: jobId }, orderBy: CHUNK_ORDER });
  await holdChunks(t, [{ chunkId: first!.id, nodeId: node.id, status: 'Assigned' }]);
  await chunkOnLaterAttempt(t, second!.id, { attempt: 2, lastError: 'After Effects exited with code 3', framesRendered: 7, framesValidated: 5 });
}, 60_000);
afterAll(() => t?.close());

const statementsOf = (request: () => Promise<unknown>) => statementsDuring(t, request);
const chunkReads = (statements: string[]) => statements.filter((sql) => /\bFROM\s+("public"\.)?"?frame_jobs\b/i.test(sql));

describe("a job's chunks over GraphQL", () => {
  it('answers every field as the database holds it, in frame order, through fragments and aliases', async () => {
    const answer = await t.gql(RenderJobChunksEveryFieldDocument, { id: jobId }, admin);
    expect(answer.errors).toBeUndefined();
    const rows = await prisma().frameJob.findMany({ where: { renderJobId: jobId }, orderBy: CHUNK_ORDER });
    expect(rows.length).toBeGreaterThan(2);
    expect(answer.data!.renderJob.frameJobs).toEqual(
      rows.map((row) => ({
        id: row.id,
        startFrame: row.startFrame,
        endFrame: row.endFrame,
        orderValue: row.orderValue,
        renderJobId: jobId,
        chunkStatus: row.status,
        framesRendered: row.framesRendered,
        framesValidated: row.framesValidated,
        attempt: row.attempt,
        lastError: row.lastError,
        nodeId: row.nodeId,
        node: row.nodeId ? { id: row.nodeId } : null,
      })),
    );
    expect(answer.data!.renderJob.frameJobs[0]).toMatchObject({ chunkStatus: 'Assigned', nodeId: node.id, node: { id: node.id } });
    expect(answer.data!.renderJob.frameJobs[1]).toMatchObject({ attempt: 2, lastError: 'After Effects exited with code 3', framesRendered: 7, framesValidated: 5 });
  });

  it("hides the chunk's node from the job's owner, and shows the rest", async () => {
    const answer = await t.gql(RenderJobChunksEveryFieldDocument, { id: jobId }, owner.token);
    expect(answer.errors).toBeUndefined();
    expect(answer.data!.renderJob.frameJobs[0]).toMatchObject({ chunkStatus: 'Assigned', nodeId: node.id, node: null });
  });

  it('reads only the columns the request selects', async () => {
    let answer: any;
    const starts = chunkReads(
      await statementsOf(async () => {
        answer = await t.gql(RenderJobChunkStartsDocument, { id: jobId }, admin);
      }),
    );
    expect(answer.errors).toBeUndefined();
    expect(answer.data!.renderJob.frameJobs.map((chunk: { startFrame: number }) => chunk.startFrame)).toEqual(
      (await prisma().frameJob.findMany({ where: { renderJobId: jobId }, orderBy: CHUNK_ORDER })).map((row) => row.startFrame),
    );
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatch(/\bstart_frame\b/);
    expect(starts[0]).not.toMatch(/\b(end_frame|last_error|node_id|status|lease_token|updated_at)\b/);

    const every = chunkReads(await statementsOf(() => t.gql(RenderJobChunksEveryFieldDocument, { id: jobId }, admin)));
    expect(every).toHaveLength(1);
    for (const column of ['start_frame', 'end_frame', 'order_value', 'status', 'frames_rendered', 'frames_validated', 'attempt', 'last_error', 'node_id']) {
      expect(every[0]).toMatch(new RegExp(`\\b${column}\\b`));
    }
    // What no field shows is never read.
    expect(every[0]).not.toMatch(/\b(lease_token|assigned_at|created_at|updated_at)\b/);
  });

  it('declares what every FrameJob field reads', () => {
    const frameJob = schema.getType('FrameJob');
    if (!isObjectType(frameJob)) throw new Error('FrameJob is not an object type');
    const undeclared = Object.keys(frameJob.getFields()).filter((field) => chunkPropertiesOf([field]).length === 0);
    expect(undeclared).toEqual([]);
  });

  it('refuses a caller without a token and hides other users’ jobs', async () => {
    const anonymous = await t.gql(RenderJobChunkStartsDocument, { id: jobId });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const stranger = await t.gql(RenderJobChunkStartsDocument, { id: jobId }, await t.token(randomUUID()));
    expect(stranger.data).toBeNull();
    expect(stranger.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
