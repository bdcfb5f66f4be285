// The exports of many User and SavedProject entities, as a gateway asks for them: one `_entities`
// request whose first pages are read together, in the same statements for two users as for
// twenty, each list what the owner's own listing answers, and only what the caller may see.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationUsersExportsDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { createExportRows, createStoredExport } from '../support/exports.ts';

const OTHER_USERS = 20;
const HOUR_MS = 3600 * 1000;

let t: TestApp;
let owner: TestUser;
let stranger: TestUser;
let adminToken: string;
/** Each user's export ids, newest first (as the listings order them). */
const exportsOf = new Map<string, string[]>();
const others: string[] = [];
const project = randomUUID();
let projectExports: string[];

/** `count` exports an hour apart, the first the oldest. */
async function exportRows(userId: string, count: number): Promise<void> {
  const start = Date.now() - 100 * HOUR_MS;
  const ids = await createExportRows(t, userId, count, (index) => ({ produceDate: new Date(start + index * HOUR_MS) }));
  exportsOf.set(userId, [...ids].reverse());
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = await t.user();
  stranger = await t.user();
  adminToken = await t.token(randomUUID(), { admin: true });
  await exportRows(owner.id, 6);
  await exportRows(stranger.id, 2);
  for (let index = 0; index < OTHER_USERS; index++) {
    const other = await t.user();
    others.push(other.id);
    await exportRows(other.id, 2);
  }
  // Two exports of one saved project, by two users, with their files.
  const older = await createStoredExport(t, owner.id, { savedProjectId: project, produceDate: new Date(Date.now() - HOUR_MS) });
  const newer = await createStoredExport(t, stranger.id, { savedProjectId: project });
  projectExports = [newer.id, older.id];
  exportsOf.set(owner.id, [older.id, ...exportsOf.get(owner.id)!]);
  exportsOf.set(stranger.id, [newer.id, ...exportsOf.get(stranger.id)!]);
}, 120_000);

afterAll(() => t?.close());

interface Entity {
  exports: {
    edges: Array<{ node: { id: string; userId?: string; savedProjectId?: string; files?: Array<{ fileType: string }> } }>;
    pageInfo?: { hasNextPage: boolean; endCursor?: string | null };
  };
}

async function entitiesExports(representations: Array<{ __typename: 'User' | 'SavedProject'; id: string }>, token: string, variables: { first?: number; after?: string } = {}) {
  const statements: string[] = [];
  const off = t.app.services.db.onQuery((sql) => statements.push(sql));
  try {
    const answer = await t.gql(FederationUsersExportsDocument, { representations, ...variables }, token);
    expect(answer.errors).toBeUndefined();
    return { entities: answer.data!._entities as unknown as Entity[], statements: statements.length };
  } finally {
    off();
  }
}

const users = (ids: string[]) => ids.map((id) => ({ __typename: 'User' as const, id }));
const idsOf = (entity: Entity) => entity.exports.edges.map((edge) => edge.node.id);

describe('exports of User and SavedProject entities', () => {
  it("answers each user's newest exports, in order, with their files and whether more follow", async () => {
    const { entities } = await entitiesExports(users([owner.id, stranger.id, randomUUID(), owner.id.toUpperCase()]), adminToken, { first: 4 });
    const owners = exportsOf.get(owner.id)!;
    expect(entities.map(idsOf)).toEqual([owners.slice(0, 4), exportsOf.get(stranger.id), [], owners.slice(0, 4)]);
    expect(entities.map((entity) => entity.exports.pageInfo?.hasNextPage)).toEqual([true, false, false, true]);
    expect(entities[0]!.exports.edges.every((edge) => edge.node.userId === owner.id)).toBe(true);
    expect(entities[0]!.exports.edges[0]!.node.files!.map((file) => file.fileType)).toEqual(['gif', 'webm']);
  });

  it('reads twenty users in as many statements as two', async () => {
    const two = await entitiesExports(users(others.slice(0, 2)), adminToken, { first: 5 });
    const twenty = await entitiesExports(users(others), adminToken, { first: 5 });
    expect(twenty.entities.map(idsOf)).toEqual(others.map((id) => exportsOf.get(id)));
    expect(two.statements).toBeGreaterThan(0);
    expect(twenty.statements).toBe(two.statements);
  });

  it("shows a user their own exports and none of another user's, by user and by saved project", async () => {
    const { entities } = await entitiesExports([...users([owner.id, stranger.id]), { __typename: 'SavedProject', id: project }], owner.token, { first: 10 });
    expect(entities.map(idsOf)).toEqual([exportsOf.get(owner.id), [], projectExports.slice(1)]);
  });

  it("answers a saved project's exports of every user to an admin", async () => {
    const { entities } = await entitiesExports([{ __typename: 'SavedProject', id: project }], adminToken, { first: 5 });
    expect(entities.map(idsOf)).toEqual([projectExports]);
    expect(entities[0]!.exports.edges.every((edge) => edge.node.savedProjectId === project)).toBe(true);
  });

  it('pages on from a cursor of one user', async () => {
    const first = await entitiesExports(users([owner.id]), adminToken, { first: 4 });
    const next = await entitiesExports(users([owner.id]), adminToken, { first: 4, after: first.entities[0]!.exports.pageInfo!.endCursor! });
    expect(next.entities.map(idsOf)).toEqual([exportsOf.get(owner.id)!.slice(4)]);
    expect(next.entities[0]!.exports.pageInfo!.hasNextPage).toBe(false);
  });

  it('refuses an anonymous caller', async () => {
    const answer = await t.gql(FederationUsersExportsDocument, { representations: users([owner.id]), first: 2 });
    expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });
});
