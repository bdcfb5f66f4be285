// This subgraph composed with a stand-in identity subgraph (@apollo/composition, the SDL the
// supergraph is composed from) and served by the project's gateway (Hive Gateway, gateway/main.ts):
// queries that start at the identity's users and cross into their render jobs and exports.
import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayProcess, startGateway } from '../../bench/lib/gateway.ts';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { createStoredExport } from '../support/exports.ts';
import { emailOf, startIdentitySubgraph } from '../support/identity.ts';
import { FREE_RENDER, submitRender } from '../support/jobs.ts';

let t: TestApp;
let identity: Awaited<ReturnType<typeof startIdentitySubgraph>>;
let gateway: GatewayProcess;
let gatewayUrl: string;
let owner: { id: string; token: string };
let jobId: string;
/** Users with two jobs and one export each. */
let people: (TestUser & { jobIds: string[]; exportId: string })[];

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = { id: randomUUID(), token: '' };
  owner.token = await t.token(owner.id);
  jobId = (await submitRender(t, owner.token, { ...FREE_RENDER, duration_sec: 3 })).id;

  people = [];
  for (let index = 0; index < 3; index++) {
    const person = await t.user();
    const jobIds: string[] = [];
    for (let job = 0; job < 2; job++) {
      jobIds.push((await submitRender(t, person.token, { ...FREE_RENDER, duration_sec: 1 })).id);
    }
    const exported = await createStoredExport(t, person.id, { renderJobId: jobIds[0] });
    people.push({ ...person, jobIds: jobIds.reverse(), exportId: exported.id });
  }

  identity = await startIdentitySubgraph();
  gateway = await startGateway({ identity: identity.url, render: `${t.url}/graphql` });
  gatewayUrl = `${gateway.url}/graphql`;
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await identity?.stop();
  await t.close();
});

async function throughGateway(query: string, token: string) {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { data?: any; errors?: { message: string }[] };
}

describe('the supergraph', () => {
  it("answers a query that starts at identity's User and gets the user's render jobs from this subgraph", async () => {
    const result = await throughGateway('{ me { id email renderJobs(first: 5) { edges { node { id step priceType } } } } }', owner.token);
    expect(result.errors).toBeUndefined();
    expect(result.data.me).toEqual({
      id: owner.id,
      email: emailOf(owner.id),
      renderJobs: { edges: [{ node: { id: jobId, step: 'Queued', priceType: 'Free' } }] },
    });
  });

  it("shows another user nothing of this user's jobs through the entity", async () => {
    const stranger = await t.token(randomUUID());
    const result = await throughGateway('{ me { renderJobs(first: 5) { edges { node { id } } } } }', stranger);
    expect(result.data.me.renderJobs.edges).toEqual([]);
  });

  it("crosses from several identity users into each one's jobs, their chunks and exports, for an admin", async () => {
    const admin = await t.token(randomUUID(), { admin: true });
    const ids = people.map((person) => `"${person.id}"`).join(', ');
    const result = await throughGateway(
      `{ users(ids: [${ids}]) { id email
          renderJobs(first: 5) { edges { node { id userId exportId frameJobs { id renderJobId } } } }
          exports(first: 5) { edges { node { id userId renderJobId } } } } }`,
      admin,
    );
    expect(result.errors).toBeUndefined();
    expect(result.data.users).toHaveLength(people.length);
    for (const [index, person] of people.entries()) {
      const user = result.data.users[index];
      expect(user.id).toBe(person.id);
      expect(user.email).toBe(emailOf(person.id));
      const jobs = user.renderJobs.edges.map((edge: any) => edge.node);
      expect(jobs.map((job: any) => job.id)).toEqual(person.jobIds);
      expect(jobs.every((job: any) => job.userId === person.id && job.frameJobs.length > 0)).toBe(true);
      expect(jobs.flatMap((job: any) => job.frameJobs.map((chunk: any) => chunk.renderJobId))).toEqual(
        jobs.flatMap((job: any) => job.frameJobs.map(() => job.id)),
      );
      expect(jobs.find((job: any) => job.exportId !== null)?.exportId).toBe(person.exportId);
      expect(user.exports.edges.map((edge: any) => edge.node)).toEqual([{ id: person.exportId, userId: person.id, renderJobId: person.jobIds[1] }]);
    }
  });

  it("shows a user their own jobs and exports through the identity's users, and nothing of the others'", async () => {
    const [me, ...others] = people;
    const ids = people.map((person) => `"${person.id}"`).join(', ');
    const result = await throughGateway(
      `{ users(ids: [${ids}]) { id renderJobs(first: 5) { edges { node { id } } } exports(first: 5) { edges { node { id } } } } }`,
      me!.token,
    );
    expect(result.errors).toBeUndefined();
    expect(result.data.users).toEqual([
      {
        id: me!.id,
        renderJobs: { edges: me!.jobIds.map((id) => ({ node: { id } })) },
        exports: { edges: [{ node: { id: me!.exportId } }] },
      },
      ...others.map((other) => ({ id: other.id, renderJobs: { edges: [] }, exports: { edges: [] } })),
    ]);
  });

  it('resolves render job entities for their owner only', async () => {
    const query = `{ _entities(representations: [{ __typename: "RenderJob", id: "${jobId}" }]) { ... on RenderJob { id step } } }`;
    const own = await t.gql(parse(query) as never, {}, owner.token);
    expect(own.data).toEqual({ _entities: [{ id: jobId, step: 'Queued' }] });
    const other = await t.gql(parse(query) as never, {}, await t.token(randomUUID()));
    expect((other.errors as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
