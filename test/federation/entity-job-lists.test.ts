// The jobs of many User entities, as a gateway asks for them: one `_entities` request whose
// first pages are read together, in the same statements for two users as for twenty, each user's
// list what the user's own listing answers, and only what the caller may see.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationUsersJobsDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp, type TestUser, userActor } from '../support/app.ts';

const OWNER_JOBS = 7;
const OTHER_USERS = 20;

let t: TestApp;
let owner: TestUser;
let stranger: TestUser;
let adminToken: string;
/** Each user's job ids, newest first (as the listings order them). */
const jobsOf = new Map<string, string[]>();
const others: string[] = [];
let cancelled: string[];

async function submitJobs(userId: string, count: number): Promise<void> {
  const ids: string[] = [];
  for (let index = 0; index < count; index++) {
    const job = await t.app.services.jobs.submit(userActor(userId), { savedProjectId: randomUUID(), quality: 'Low', resolution: 'HD', priceType: 'Free', durationSec: 1 });
    ids.unshift(job.id);
  }
  jobsOf.set(userId, ids);
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = await t.user();
  stranger = await t.user();
  adminToken = await t.token(randomUUID(), { admin: true });
  await submitJobs(owner.id, OWNER_JOBS);
  await submitJobs(stranger.id, 3);
  for (let index = 0; index < OTHER_USERS; index++) {
    const other = await t.user();
    others.push(other.id);
    await submitJobs(other.id, 2);
  }
  cancelled = jobsOf.get(owner.id)!.slice(1, 3);
  for (const id of cancelled) await t.app.services.jobs.cancel(userActor(owner.id), id);
}, 120_000);

afterAll(() => t?.close());

interface Entity {
  renderJobs: {
    edges: Array<{ node: { id: string; userId: string; frameJobs: Array<{ id: string }> } }>;
    pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  };
}

async function usersJobs(userIds: string[], token: string, variables: { first?: number; after?: string; status?: 'Cancelled' } = {}) {
  const statements: string[] = [];
  const off = t.app.services.db.onQuery((sql) => statements.push(sql));
  try {
    const answer = await t.gql(FederationUsersJobsDocument, { representations: userIds.map((id) => ({ __typename: 'User', id })), ...variables }, token);
    expect(answer.errors).toBeUndefined();
    return { entities: answer.data!._entities as unknown as Entity[], statements: statements.length };
  } finally {
    off();
  }
}

const idsOf = (entity: Entity) => entity.renderJobs.edges.map((edge) => edge.node.id);

describe('renderJobs of User entities', () => {
  it("answers each user's newest jobs, in order, with their chunks and whether more follow", async () => {
    const nobody = randomUUID();
    const { entities } = await usersJobs([owner.id, stranger.id, nobody, owner.id.toUpperCase()], adminToken, { first: 5 });
    expect(entities.map(idsOf)).toEqual([jobsOf.get(owner.id)!.slice(0, 5), jobsOf.get(stranger.id), [], jobsOf.get(owner.id)!.slice(0, 5)]);
    expect(entities.map((entity) => entity.renderJobs.pageInfo.hasNextPage)).toEqual([true, false, false, true]);
    expect(entities[0]!.renderJobs.edges.every((edge) => edge.node.userId === owner.id && edge.node.frameJobs.length > 0)).toBe(true);
  });

  it('reads twenty users in as many statements as two', async () => {
    const two = await usersJobs(others.slice(0, 2), adminToken, { first: 5 });
    const twenty = await usersJobs(others, adminToken, { first: 5 });
    expect(twenty.entities.map(idsOf)).toEqual(others.map((id) => jobsOf.get(id)));
    expect(two.statements).toBeGreaterThan(0);
    expect(twenty.statements).toBe(two.statements);
  });

  it("shows a user their own jobs and none of another user's", async () => {
    const { entities } = await usersJobs([owner.id, stranger.id], owner.token, { first: 10 });
    expect(entities.map(idsOf)).toEqual([jobsOf.get(owner.id), []]);
  });

  it('filters by status', async () => {
    const { entities } = await usersJobs([owner.id, stranger.id], adminToken, { first: 5, status: 'Cancelled' });
    expect(entities.map(idsOf)).toEqual([cancelled, []]);
  });

  it('pages on from a cursor of one user', async () => {
    const first = await usersJobs([owner.id], adminToken, { first: 4 });
    const next = await usersJobs([owner.id], adminToken, { first: 4, after: first.entities[0]!.renderJobs.pageInfo.endCursor! });
    expect(next.entities.map(idsOf)).toEqual([jobsOf.get(owner.id)!.slice(4)]);
    expect(next.entities[0]!.renderJobs.pageInfo.hasNextPage).toBe(false);
  });
});
