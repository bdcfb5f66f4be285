// `_entities` as the gateway sends it: many references of every entity type in one request. Each
// type is read in one statement whatever the number of references, and what the caller may not
// see comes back null with the error the type's own query gives.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationEntitiesDocument, FederationEntityIdsDocument } from '../generated/graphql.ts';
import { startTestApp, TEST_ADMIN, type TestApp, type TestUser, userActor } from '../support/app.ts';
import { createExportRows } from '../support/exports.ts';
import { pointChunksAt } from '../support/rows.ts';
import { createSnapshotRows } from '../support/snapshots.ts';

const COUNT = 50;
const ENTITY_TABLES = { RenderJob: 'render_jobs', FrameJob: 'frame_jobs', RenderNode: 'render_nodes', Snapshot: 'snapshots', Export: 'exports' };
type EntityType = keyof typeof ENTITY_TABLES;

let t: TestApp;
let owner: TestUser;
let stranger: TestUser;
let adminToken: string;
const ids: Record<EntityType, string[]> = { RenderJob: [], FrameJob: [], RenderNode: [], Snapshot: [], Export: [] };
const strangers: Partial<Record<EntityType, string>> = {};

const prisma = () => t.app.services.db.prisma;

async function submitJob(user: TestUser) {
  return t.app.services.jobs.submit(userActor(user.id), {
    savedProjectId: randomUUID(),
    quality: 'Low',
    resolution: 'HD',
    priceType: 'Free',
    durationSec: 1,
  });
}


beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = await t.user();
  stranger = await t.user();
  adminToken = await t.token(randomUUID(), { admin: true });

  const node = await t.onlineNode('entities-node');
  for (let index = 0; index < COUNT; index++) ids.RenderJob.push((await submitJob(owner)).id);
  const strangerJob = await submitJob(stranger);
  strangers.RenderJob = strangerJob.id;
  const chunks = await prisma().frameJob.findMany({ where: { renderJobId: { in: ids.RenderJob } }, orderBy: { id: 'asc' }, take: COUNT });
  ids.FrameJob = chunks.map((chunk) => chunk.id);
  // Half of the chunks on a node, so that the chunks' node field has something to read.
  await pointChunksAt(t, ids.FrameJob.filter((_, index) => index % 2 === 0), node.id);
  strangers.FrameJob = (await prisma().frameJob.findFirstOrThrow({ where: { renderJobId: strangerJob.id } })).id;

  for (let index = 0; index < COUNT; index++) {
    const registered = await t.app.services.nodes.register(TEST_ADMIN, {
      name: `entities-${index}-${randomUUID().slice(0, 8)}`,
      region: 'eu',
      nodeIp: '10.0.0.2',
      workerPort: 9000,
      currentAeVersion: '24.1',
    });
    ids.RenderNode.push(registered.node.id);
  }

  ids.Snapshot = await createSnapshotRows(t, owner.id, COUNT);
  [strangers.Snapshot] = await createSnapshotRows(t, stranger.id, 1);
  ids.Export = await createExportRows(t, owner.id, COUNT);
  [strangers.Export] = await createExportRows(t, stranger.id, 1);
}, 120_000);

afterAll(() => t?.close());

function representations(types: EntityType[], count: number, extra: { __typename: EntityType; id: string }[] = []) {
  return [...types.flatMap((type) => ids[type].slice(0, count).map((id) => ({ __typename: type, id }))), ...extra];
}

/** The entities query, with every statement Prisma sent for it, by the table it reads first. */
async function resolveEntities(refs: { __typename: string; id: string }[], token: string | undefined) {
  return countStatements(() => t.gql(FederationEntitiesDocument, { representations: refs }, token));
}

async function countStatements<R>(request: () => Promise<R>) {
  const statements: string[] = [];
  const off = t.app.services.db.onQuery((sql) => statements.push(sql));
  try {
    const answer = await request();
    const byTable: Record<string, number> = {};
    for (const sql of statements) {
      const table = /\bFROM\s+"public"\."(\w+)"/i.exec(sql)?.[1] ?? sql.slice(0, 20);
      byTable[table] = (byTable[table] ?? 0) + 1;
    }
    return { answer, statements: statements.length, byTable };
  } finally {
    off();
  }
}

const USER_TYPES: EntityType[] = ['RenderJob', 'FrameJob', 'Snapshot', 'Export'];

describe('_entities with many references', () => {
  it(`reads each of the five entity tables once for ${COUNT} references of every type`, async () => {
    const types = Object.keys(ENTITY_TABLES) as EntityType[];
    const refs = [...representations(types, COUNT), ...types.map((type) => ({ __typename: type, id: randomUUID() }))];
    const { answer, byTable } = await countStatements(() => t.gql(FederationEntityIdsDocument, { representations: refs }, adminToken));
    expect(byTable).toEqual({ render_jobs: 1, frame_jobs: 1, render_nodes: 1, snapshots: 1, exports: 1 });
    const entities = answer.data!._entities;
    expect(entities.slice(0, types.length * COUNT).map((entity) => (entity as { id: string }).id)).toEqual(types.flatMap((type) => ids[type]));
    expect(entities.slice(types.length * COUNT)).toEqual(types.map(() => null));
    expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(types.map(() => 'NOT_FOUND'));
  });

  it(`answers the nested fields of ${COUNT} references per type in as many statements as of one`, async () => {
    const one = await resolveEntities(representations(USER_TYPES, 1), owner.token);
    expect(one.answer.errors).toBeUndefined();
    const many = await resolveEntities(representations(USER_TYPES, COUNT), owner.token);
    expect(many.answer.errors).toBeUndefined();
    const entities = many.answer.data!._entities;
    expect(entities).toHaveLength(USER_TYPES.length * COUNT);
    for (const type of USER_TYPES) {
      expect(entities.filter((entity) => entity?.__typename === type).map((entity) => (entity as { id: string }).id)).toEqual(ids[type]);
      expect(many.byTable[ENTITY_TABLES[type]], `${type}: ${JSON.stringify(many.byTable)}`).toBeGreaterThanOrEqual(1);
    }
    // Reading one entity per type takes the same statements as reading fifty: nothing per reference.
    expect(many.byTable, JSON.stringify({ one: one.byTable, many: many.byTable })).toEqual(one.byTable);
    const jobs = entities.filter((entity) => entity?.__typename === 'RenderJob') as { userId: string; frameJobs: unknown[] }[];
    expect(jobs.every((job) => job.userId === owner.id && job.frameJobs.length > 0)).toBe(true);
    // The chunks' node is for admins: a user reads null there, without a query for it.
    const chunks = entities.filter((entity) => entity?.__typename === 'FrameJob') as { node: unknown }[];
    expect(chunks.every((chunk) => chunk.node === null)).toBe(true);
  });

  it("answers a missing id and another user's id with null and NOT_FOUND, still in one read per type", async () => {
    const extra = USER_TYPES.flatMap((type) => [
      { __typename: type, id: randomUUID() },
      { __typename: type, id: strangers[type]! },
    ]);
    const refs = representations(USER_TYPES, COUNT, extra);
    const { answer, byTable } = await resolveEntities(refs, owner.token);
    const entities = answer.data!._entities;
    expect(entities).toHaveLength(refs.length);
    expect(entities.slice(0, USER_TYPES.length * COUNT).every((entity) => entity !== null)).toBe(true);
    expect(entities.slice(USER_TYPES.length * COUNT)).toEqual(extra.map(() => null));
    const errors = answer.errors ?? [];
    expect(errors).toHaveLength(extra.length);
    expect(errors.map((error) => error.extensions?.code)).toEqual(extra.map(() => 'NOT_FOUND'));
    // The failed references sit at their own index of the answer.
    const paths = errors.map((error) => (error as { path?: [string, number] }).path!).sort((a, b) => a[1] - b[1]);
    expect(paths).toEqual(extra.map((_, index) => ['_entities', USER_TYPES.length * COUNT + index]));
    const clean = await resolveEntities(representations(USER_TYPES, COUNT), owner.token);
    expect(byTable).toEqual(clean.byTable);
  });

  it("shows the stranger's own entities to the stranger and none of the owner's", async () => {
    const refs = [
      ...USER_TYPES.map((type) => ({ __typename: type, id: strangers[type]! })),
      ...USER_TYPES.map((type) => ({ __typename: type, id: ids[type][0]! })),
    ];
    const { answer } = await resolveEntities(refs, stranger.token);
    const entities = answer.data!._entities;
    expect(entities.slice(0, USER_TYPES.length).map((entity) => (entity as { id: string }).id)).toEqual(USER_TYPES.map((type) => strangers[type]));
    expect(entities.slice(USER_TYPES.length)).toEqual(USER_TYPES.map(() => null));
  });

  it(`resolves ${COUNT} render nodes for an admin in one read, and none for a user`, async () => {
    const missing = { __typename: 'RenderNode' as const, id: randomUUID() };
    const one = await resolveEntities(representations(['RenderNode'], 1), adminToken);
    const many = await resolveEntities(representations(['RenderNode'], COUNT, [missing]), adminToken);
    const entities = many.answer.data!._entities;
    expect(entities.slice(0, COUNT).map((entity) => (entity as { id: string }).id)).toEqual(ids.RenderNode);
    expect(entities[COUNT]).toBeNull();
    expect(many.answer.errors?.map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
    expect(many.byTable, JSON.stringify({ one: one.byTable, many: many.byTable })).toEqual(one.byTable);
    expect(many.byTable.render_nodes).toBe(1);

    const asUser = await resolveEntities(representations(['RenderNode'], 3), owner.token);
    expect(asUser.answer.data!._entities).toEqual([null, null, null]);
    expect(asUser.answer.errors?.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN']);
    expect(asUser.statements).toBe(0);
  });

  it('lets an admin resolve every user’s entities, the chunks with their nodes', async () => {
    const refs = [...representations(USER_TYPES, COUNT), ...USER_TYPES.map((type) => ({ __typename: type, id: strangers[type]! }))];
    const { answer } = await resolveEntities(refs, adminToken);
    expect(answer.errors).toBeUndefined();
    expect(answer.data!._entities.every((entity) => entity !== null)).toBe(true);
    const chunks = answer.data!._entities.filter((entity) => entity?.__typename === 'FrameJob') as { node: { id: string } | null }[];
    expect(chunks.filter((chunk) => chunk.node !== null)).toHaveLength(COUNT / 2);
  });

  it('refuses anonymous callers every entity, reading nothing', async () => {
    const { answer, statements } = await resolveEntities(representations(USER_TYPES, 2), undefined);
    expect(answer.data!._entities).toEqual(USER_TYPES.flatMap(() => [null, null]));
    expect(new Set(answer.errors?.map((error) => error.extensions?.code))).toEqual(new Set(['UNAUTHENTICATED']));
    expect(statements).toBe(0);
  });
});
