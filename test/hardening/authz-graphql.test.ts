// The authorization matrix through GraphQL: every query, mutation and subscription field of the
// executable subgraph schema (federation's _entities and _service included), called by every
// caller with a bearer credential or none, answers its policy: data when allowed, a typed error
// (extensions.code, or the error member of the result union) when refused, and a refusal changes
// no row. Subscriptions go over a real graphql-ws connection. A field without a row fails.
import { randomUUID } from 'node:crypto';
import { type GraphQLField, type GraphQLObjectType, getNamedType, isInterfaceType, isLeafType, isUnionType, parse } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { schema } from '../../src/graphql/schema.ts';
import { startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestUser } from '../support/app.ts';
import { createStoredExport } from '../support/exports.ts';
import { updateBody } from '../support/updates.ts';
import {
  BEARER_CALLERS,
  type BearerCaller,
  cancelledJob,
  changedTables,
  createUpdate,
  databaseDigest,
  expectedOutcome,
  jobBody,
  type Policy,
  nodeInMaintenance,
  registerNode,
  submitJob,
  syncProject,
} from './authz-matrix.ts';

let t: TestApp;
let f: Fixtures;

interface Fixtures {
  owner: TestUser;
  other: TestUser;
  admin: TestUser;
  projectId: string;
  jobId: string;
  frameJobId: string;
  cancelledJobId: string;
  exportId: string;
  snapshotId: string;
  /** A node only read. */
  nodeId: string;
  /** A node the admin mutations change. */
  targetNodeId: string;
  updateId: string;
  discountCode: string;
}

type Variables = Record<string, unknown>;

interface Row {
  /** `Query.renderJob`, `Mutation.cancelRenderJob`, `Subscription.renderProgress`. */
  field: string;
  /** Tells rows of one field apart (the entity types of _entities). */
  variant?: string;
  policy: Policy;
  /** Refusals that differ from the policy's. */
  except?: Partial<Record<BearerCaller, string>>;
  /** The variables of a call; an allowed caller of a mutation that changes state gets a target of its own. */
  variables(f: Fixtures, fresh: boolean): Variables | Promise<Variables>;
  selection?: string;
  check?(data: any, caller: BearerCaller, f: Fixtures): void;
  /** Subscriptions without a first event: makes one that the caller may see. */
  trigger?(caller: BearerCaller, f: Fixtures): Promise<unknown>;
  /**
   * A subscription to everyone's changes. Every test app on the machine publishes on the same
   * Redis channels, so it also hears other apps' objects, which this database does not hold and
   * which end in an internal error; those answers are passed over.
   */
  hearsOtherApps?: boolean;
}

const REFUSAL = { status: 200 };
/** The error code the policy gives the caller; undefined when the call is allowed. */
const expectedCode = (row: Row, caller: BearerCaller) => row.except?.[caller] ?? expectedOutcome(row.policy, caller, REFUSAL).code;

const entity = (typename: string, id: (f: Fixtures) => string, policy: Policy): Row => ({
  field: 'Query._entities',
  variant: typename,
  policy,
  variables: (f) => ({ representations: [{ __typename: typename, id: id(f) }] }),
  selection: `{ __typename ... on ${typename} { id } }`,
});

const newUpdateInput = () => {
  const body = updateBody();
  return { updateFileName: body.update_file_name, updateNumber: body.update_number, targetAeVersion: body.target_ae_version, sha256: body.sha256, downloadUrl: body.download_url };
};

async function newDiscountCode(): Promise<string> {
  const code = `AUTHZ${randomUUID().slice(0, 8).toUpperCase()}`;
  const created = await gql('mutation($input: CreateDiscountCodeInput!) { createDiscountCode(input: $input) { __typename } }', { input: { code, percentOff: 10 } }, f.admin.token);
  expect(created.data?.createDiscountCode?.__typename, JSON.stringify(created)).toBe('DiscountCode');
  return code;
}

/** Lists: the owner, admins and services find the owner's object, another user does not. */
const lists = (connection: (data: any) => any, id: (f: Fixtures) => string) => (data: any, caller: BearerCaller, f: Fixtures) => {
  const ids = (connection(data).edges as { node: { id: string } }[]).map((edge) => edge.node.id);
  if (caller === 'other') expect(ids).not.toContain(id(f));
  else expect(ids).toContain(id(f));
};

const ROWS: Row[] = [
  { field: 'Query.renderNodes', policy: 'admin', variables: () => ({}) },
  { field: 'Query.renderNode', policy: 'admin', variables: (f) => ({ id: f.nodeId }) },
  {
    field: 'Query.renderJobs',
    policy: 'userOrService',
    variables: () => ({ first: 100 }),
    selection: '{ edges { node { id } } }',
    check: lists((data) => data.renderJobs, (f) => f.jobId),
  },
  { field: 'Query.renderJob', policy: 'ownerOrService', variables: (f) => ({ id: f.jobId }) },
  { field: 'Query.renderProgress', policy: 'ownerOrService', variables: (f) => ({ jobId: f.jobId }) },
  { field: 'Query.renderJobLogs', policy: 'ownerOrService', variables: (f) => ({ jobId: f.jobId }) },
  { field: 'Query.wallet', policy: 'user', variables: () => ({}) },
  { field: 'Query.discountCodes', policy: 'admin', variables: () => ({}) },
  {
    field: 'Query.exports',
    policy: 'userOrService',
    variables: () => ({ first: 100 }),
    selection: '{ edges { node { id } } }',
    check: lists((data) => data.exports, (f) => f.exportId),
  },
  { field: 'Query.export', policy: 'ownerOrService', variables: (f) => ({ id: f.exportId }) },
  { field: 'Query.exportDownloadUrl', policy: 'ownerOrService', variables: (f) => ({ id: f.exportId }) },
  { field: 'Query.renderNodeHealth', policy: 'admin', variables: (f) => ({ nodeId: f.nodeId }) },
  { field: 'Query.renderNodeHealthHistory', policy: 'admin', variables: (f) => ({ nodeId: f.nodeId }) },
  { field: 'Query.renderNodeCrashes', policy: 'admin', variables: (f) => ({ nodeId: f.nodeId }) },
  { field: 'Query.renderNodeCommands', policy: 'admin', variables: (f) => ({ nodeId: f.nodeId }) },
  { field: 'Query.nodeUpdates', policy: 'admin', variables: () => ({}) },
  { field: 'Query.rollouts', policy: 'admin', variables: () => ({}) },
  { field: 'Query.snapshot', policy: 'ownerOrService', variables: (f) => ({ id: f.snapshotId }) },
  // The gateway reads the SDL without credentials.
  { field: 'Query._service', policy: 'public', variables: () => ({}), selection: '{ sdl }' },
  entity('RenderJob', (f) => f.jobId, 'ownerOrService'),
  entity('FrameJob', (f) => f.frameJobId, 'ownerOrService'),
  entity('Export', (f) => f.exportId, 'ownerOrService'),
  entity('Snapshot', (f) => f.snapshotId, 'ownerOrService'),
  entity('RenderNode', (f) => f.nodeId, 'admin'),
  // Identity's users, extended with their jobs and exports as GET /renders and GET /exports list them.
  {
    field: 'Query._entities',
    variant: 'User',
    policy: 'userOrService',
    variables: (f) => ({ representations: [{ __typename: 'User', id: f.owner.id }] }),
    selection: '{ ... on User { renderJobs(first: 100) { edges { node { id } } } exports(first: 100) { edges { node { id } } } } }',
    check: (data, caller, f) => {
      lists((answer) => answer._entities[0].renderJobs, (f) => f.jobId)(data, caller, f);
      lists((answer) => answer._entities[0].exports, (f) => f.exportId)(data, caller, f);
    },
  },

  {
    field: 'Mutation.registerRenderNode',
    policy: 'admin',
    variables: () => ({
      input: { name: `authz-${randomUUID().slice(0, 8)}`, region: 'eu', nodeIp: '10.0.0.9', workerPort: 9000, currentAeVersion: '24.1' },
    }),
  },
  {
    field: 'Mutation.submitRenderJob',
    policy: 'owner',
    variables: (f) => ({ input: { savedProjectId: f.projectId, quality: 'Low', resolution: 'HD', durationSec: 1 } }),
  },
  {
    field: 'Mutation.cancelRenderJob',
    policy: 'owner',
    variables: async (f, fresh) => ({ id: fresh ? await submitJob(t, f.owner, f.projectId) : f.jobId }),
  },
  {
    field: 'Mutation.retryRenderJob',
    policy: 'owner',
    variables: async (f, fresh) => ({ id: fresh ? await cancelledJob(t, f.owner, f.projectId) : f.cancelledJobId }),
  },
  {
    field: 'Mutation.creditWallet',
    policy: 'admin',
    variables: (f) => ({ input: { userId: f.owner.id, amountMinor: 100, idempotencyKey: randomUUID() } }),
  },
  {
    field: 'Mutation.createDiscountCode',
    policy: 'admin',
    variables: () => ({ input: { code: `AUTHZ${randomUUID().slice(0, 8).toUpperCase()}`, percentOff: 5 } }),
  },
  {
    field: 'Mutation.deactivateDiscountCode',
    policy: 'admin',
    variables: async (f, fresh) => ({ code: fresh ? await newDiscountCode() : f.discountCode }),
  },
  {
    field: 'Mutation.deleteExport',
    policy: 'owner',
    variables: async (f, fresh) => ({ id: fresh ? (await createStoredExport(t, f.owner.id)).id : f.exportId }),
  },
  {
    field: 'Mutation.extendExport',
    policy: 'owner',
    variables: async (f, fresh) => ({ id: fresh ? (await createStoredExport(t, f.owner.id)).id : f.exportId, days: 1 }),
  },
  { field: 'Mutation.updateRenderNode', policy: 'admin', variables: (f) => ({ id: f.targetNodeId, input: { priority: 2 } }) },
  {
    field: 'Mutation.startRenderNodeMaintenance',
    policy: 'admin',
    variables: async (f, fresh) => ({ id: fresh ? await registerNode(t) : f.targetNodeId, reason: 'checks' }),
  },
  {
    field: 'Mutation.endRenderNodeMaintenance',
    policy: 'admin',
    variables: async (f, fresh) => ({ id: fresh ? await nodeInMaintenance(t, f.admin) : f.targetNodeId }),
  },
  { field: 'Mutation.restartRenderNode', policy: 'admin', variables: (f) => ({ id: f.targetNodeId }) },
  { field: 'Mutation.releaseRenderNode', policy: 'admin', variables: (f) => ({ id: f.targetNodeId }) },
  { field: 'Mutation.closeRenderNodeAe', policy: 'admin', variables: (f) => ({ id: f.targetNodeId }) },
  { field: 'Mutation.createNodeUpdate', policy: 'admin', variables: () => ({ input: newUpdateInput() }) },
  {
    field: 'Mutation.rolloutNodeUpdate',
    policy: 'admin',
    variables: async (f, fresh) =>
      fresh
        ? { updateId: await createUpdate(t, f.admin), nodeIds: [await registerNode(t)] }
        : { updateId: f.updateId, nodeIds: [f.targetNodeId] },
  },
  {
    field: 'Mutation.requestSnapshot',
    policy: 'owner',
    variables: (f) => ({ input: { savedProjectId: f.projectId, sceneKey: `scene-${randomUUID()}`, frameNumber: 1 } }),
  },

  { field: 'Subscription.renderProgress', policy: 'ownerOrService', variables: (f) => ({ jobId: f.jobId }) },
  { field: 'Subscription.snapshotUpdated', policy: 'ownerOrService', variables: (f) => ({ id: f.snapshotId }) },
  {
    field: 'Subscription.renderJobUpdated',
    variant: 'own jobs',
    policy: 'user',
    hearsOtherApps: true,
    variables: () => ({}),
    selection: '{ id userId }',
    check: (data, caller, f) => expect(data.renderJobUpdated.userId).toBe(caller === 'other' ? f.other.id : caller === 'admin' ? f.admin.id : f.owner.id),
    // Each user's own job; the admin's is seen on the everyone topic.
    trigger: (caller, f) => {
      const user = caller === 'other' ? f.other : caller === 'admin' ? f.admin : f.owner;
      return t.rest('POST', '/v1/renders', { token: user.token, body: jobBody(user === f.owner ? f.projectId : randomUUID()) });
    },
  },
  {
    field: 'Subscription.renderJobUpdated',
    variant: "the owner's jobs",
    policy: 'owner',
    // Watching someone else's jobs is an admin's right, not a hidden object.
    except: { other: 'FORBIDDEN' },
    variables: (f) => ({ userId: f.owner.id }),
    selection: '{ id userId }',
    check: (data, _caller, f) => expect(data.renderJobUpdated.userId).toBe(f.owner.id),
    trigger: (_caller, f) => submitJob(t, f.owner, f.projectId),
  },
  {
    field: 'Subscription.nodeStatusChanged',
    policy: 'admin',
    hearsOtherApps: true,
    variables: () => ({}),
    trigger: (_caller, f) => registerNode(t),
  },
];

const ROOTS = { Query: schema.getQueryType(), Mutation: schema.getMutationType(), Subscription: schema.getSubscriptionType() };
const OPERATION = { Query: 'query', Mutation: 'mutation', Subscription: 'subscription' } as const;
const domainError = schema.getType('DomainError');

function fieldOf(path: string): { root: keyof typeof ROOTS; field: GraphQLField<unknown, unknown> } {
  const [root, name = ''] = path.split('.') as [keyof typeof ROOTS, string];
  const field = (ROOTS[root] as GraphQLObjectType | undefined)?.getFields()[name];
  if (!field) throw new Error(`${path} is not a field of the schema`);
  return { root, field };
}

/** `{ __typename }`, with the code of a typed error when the field answers a result union. */
function defaultSelection(field: GraphQLField<unknown, unknown>): string {
  const type = getNamedType(field.type);
  if (isLeafType(type)) return '';
  const answersErrors =
    isUnionType(type) && isInterfaceType(domainError) && type.getTypes().some((member) => schema.isSubType(domainError, member));
  return answersErrors ? '{ __typename ... on DomainError { code } }' : '{ __typename }';
}

function documentOf(row: Row, variables: Variables): string {
  const { root, field } = fieldOf(row.field);
  const args = field.args.filter((arg) => arg.name in variables);
  const definitions = args.length === 0 ? '' : `(${args.map((arg) => `$${arg.name}: ${String(arg.type)}`).join(', ')})`;
  const call = args.length === 0 ? '' : `(${args.map((arg) => `${arg.name}: $${arg.name}`).join(', ')})`;
  return `${OPERATION[root]}${definitions} { ${field.name}${call} ${row.selection ?? defaultSelection(field)} }`;
}

function tokenOf(caller: BearerCaller): string | undefined {
  return { none: undefined, other: f.other.token, owner: f.owner.token, admin: f.admin.token, service: TEST_SERVICE_TOKEN }[caller];
}

interface GraphQLAnswer {
  data?: Record<string, any> | null;
  errors?: { message: string; extensions?: Record<string, any> }[];
}

async function gql(query: string, variables: Variables, token?: string): Promise<GraphQLAnswer> {
  return t.gql(parse(query), variables, token);
}

/** The refusal's code: a GraphQL error's extensions.code, or the code of the union's error member. */
function codeOf(answer: GraphQLAnswer, name: string): string | undefined {
  const code = answer.errors?.[0]?.extensions?.code;
  if (code !== undefined) return String(code);
  const value = answer.data?.[name];
  return value && typeof value === 'object' && 'code' in value ? String(value.code) : undefined;
}

/** One subscription as the caller: its first answer, or the error that ended it. */
async function firstEvent(row: Row, caller: BearerCaller, query: string, variables: Variables): Promise<GraphQLAnswer> {
  const token = tokenOf(caller);
  const client = createClient({
    url: `${t.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  let poke: NodeJS.Timeout | undefined;
  // Events still being made when the answer comes are awaited, so they land before the next row's digests.
  const triggered: Promise<unknown>[] = [];
  try {
    return await new Promise<GraphQLAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${row.field} as ${caller}: no answer within 5 s`)), 5000);
      const done = (answer: GraphQLAnswer) => {
        clearTimeout(timer);
        resolve(answer);
      };
      client.subscribe(
        { query, variables },
        {
          next: (result) => {
            const internal = result.errors?.some((error) => error.extensions?.code === 'INTERNAL_SERVER_ERROR');
            if (!(internal && row.hearsOtherApps && caller === 'admin')) done(result as GraphQLAnswer);
          },
          error: (error) => done({ errors: Array.isArray(error) ? error : [{ message: String(error), extensions: { code: 'CONNECTION_ERROR' } }] }),
          complete: () => undefined,
        },
      );
      // The subscription starts listening a moment after it is sent; the event is made until it arrives.
      if (row.trigger && expectedCode(row, caller) === undefined) {
        poke = setInterval(() => triggered.push(row.trigger!(caller, f).catch(reject)), 250);
      }
    });
  } finally {
    clearInterval(poke);
    await Promise.all(triggered);
    await client.dispose();
  }
}

interface Tried {
  row: string;
  caller: BearerCaller;
  expected: string;
  got: string;
  leaked: boolean;
}

const labelOf = (row: Row) => `${row.field}${row.variant ? ` (${row.variant})` : ''}`;

async function tryCaller(row: Row, caller: BearerCaller): Promise<Tried> {
  const expected = expectedCode(row, caller);
  const variables = await row.variables(f, expected === undefined);
  const query = documentOf(row, variables);
  const answer = row.field.startsWith('Subscription.') ? await firstEvent(row, caller, query, variables) : await gql(query, variables, tokenOf(caller));
  const got = codeOf(answer, fieldOf(row.field).field.name);
  if (expected === undefined && got === undefined) row.check?.(answer.data, caller, f);
  // Another user learns nothing of the owner's objects beyond the ids it sent.
  const sent = JSON.stringify(variables);
  const text = JSON.stringify(answer);
  const leaked = caller === 'other' && [f.jobId, f.frameJobId, f.exportId, f.snapshotId].some((id) => text.includes(id) && !sent.includes(id));
  if (got !== expected) console.error(`${labelOf(row)} as ${caller}: expected ${expected ?? 'data'}, got ${text.slice(0, 300)}`);
  return { row: labelOf(row), caller, expected: expected ?? 'data', got: got ?? 'data', leaked };
}

/** The refusals side by side between two digests of the database, which must be equal; then the allowed calls. */
async function tryRow(row: Row, changedByRefusal: string[]): Promise<Tried[]> {
  const refused = BEARER_CALLERS.filter((caller) => expectedCode(row, caller) !== undefined);
  const before = await databaseDigest(t);
  const tried = await Promise.all(refused.map((caller) => tryCaller(row, caller)));
  const changed = changedTables(before, await databaseDigest(t));
  if (changed.length > 0) changedByRefusal.push(`${labelOf(row)} refusing ${refused.join(', ')} changed ${changed.join(', ')}`);
  for (const caller of BEARER_CALLERS.filter((candidate) => !refused.includes(candidate))) tried.push(await tryCaller(row, caller));
  return tried;
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  const [owner, other, admin] = await Promise.all([t.user(1_000_000), t.user(1_000_000), t.user(1_000_000, { admin: true })]);
  const projectId = await syncProject(t, owner);
  f = { owner, other, admin, projectId } as Fixtures;
  f.jobId = await submitJob(t, owner, projectId);
  const job = await t.rest('GET', `/v1/renders/${f.jobId}`, { token: owner.token });
  f.frameJobId = job.body.frame_jobs[0].id;
  f.cancelledJobId = await cancelledJob(t, owner, projectId);
  f.exportId = (await createStoredExport(t, owner.id)).id;
  const snapshot = await t.rest('POST', '/v1/snapshots', { token: owner.token, body: { saved_project_id: projectId, scene_key: 'intro', frame_number: 1 } });
  expect(snapshot.status, JSON.stringify(snapshot.body)).toBe(202);
  f.snapshotId = snapshot.body.snapshot_id;
  [f.nodeId, f.targetNodeId, f.updateId, f.discountCode] = await Promise.all([
    registerNode(t),
    registerNode(t),
    createUpdate(t, admin),
    newDiscountCode(),
  ]);
});
afterAll(() => t.close());

describe('the GraphQL authorization matrix', () => {
  it('has a row for every query, mutation and subscription field', () => {
    const fields = Object.entries(ROOTS).flatMap(([root, type]) => Object.keys(type?.getFields() ?? {}).map((name) => `${root}.${name}`));
    expect(fields.length).toBeGreaterThan(30);
    expect(fields.filter((field) => !ROWS.some((row) => row.field === field))).toEqual([]);
  });

  it('refuses a graphql-ws connection whose bearer is not valid, and tells an anonymous one to authenticate', async () => {
    const url = `${t.url.replace('http', 'ws')}/graphql`;
    const closeCode = await new Promise<number>((resolve) => {
      const client = createClient({
        url,
        webSocketImpl: WebSocket,
        connectionParams: { Authorization: 'Bearer not-a-token' },
        lazy: false,
        retryAttempts: 0,
        onNonLazyError: () => undefined,
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      void client;
    });
    expect(closeCode).toBe(4403);
    const row = ROWS.find((candidate) => candidate.field === 'Subscription.renderProgress') as Row;
    const variables = await row.variables(f, false);
    expect(codeOf(await firstEvent(row, 'none', documentOf(row, variables), variables), 'renderProgress')).toBe('UNAUTHENTICATED');
  });

  it("lets another user's watch of its own jobs hear none of the owner's", async () => {
    const client = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${f.other.token}` },
      retryAttempts: 0,
    });
    const heard: { id: string; userId: string }[] = [];
    client.subscribe<{ renderJobUpdated: { id: string; userId: string } }>(
      { query: 'subscription { renderJobUpdated { id userId } }' },
      { next: (result) => result.data && heard.push(result.data.renderJobUpdated), error: () => undefined, complete: () => undefined },
    );
    try {
      const ownerJobs: string[] = [];
      // The owner's jobs change before and while the other user's do, until the other user hears its own.
      for (let round = 0; round < 20 && heard.length === 0; round++) {
        ownerJobs.push(await submitJob(t, f.owner, f.projectId));
        await t.rest('POST', '/v1/renders', { token: f.other.token, body: jobBody(randomUUID()) });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      ownerJobs.push(await submitJob(t, f.owner, f.projectId));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(heard.length).toBeGreaterThan(0);
      expect(heard.filter((job) => job.userId !== f.other.id || ownerJobs.includes(job.id))).toEqual([]);
    } finally {
      await client.dispose();
    }
  });

  it('answers a representation whose id is not a UUID as not found, not with an internal error', async () => {
    // Users are identity's: any id is one, whose jobs and exports here are listed, none when it has none.
    const typenames = ROWS.filter((row) => row.field === 'Query._entities' && row.variant !== 'User').map((row) => row.variant);
    const query = 'query($representations: [_Any!]!) { _entities(representations: $representations) { __typename } }';
    for (const typename of typenames) {
      const answer = await gql(query, { representations: [{ __typename: typename, id: 'not-a-uuid' }] }, f.admin.token);
      expect(answer.errors?.[0]?.extensions?.code, `${typename}: ${JSON.stringify(answer)}`).toBe('NOT_FOUND');
    }
  });

  it('answers every caller of every field as its policy says, and refusals change nothing', async () => {
    const tried: Tried[] = [];
    const changedByRefusal: string[] = [];
    for (const row of ROWS) tried.push(...(await tryRow(row, changedByRefusal)));

    const wrong = tried.filter((c) => c.got !== c.expected);
    const leaks = tried.filter((c) => c.leaked);
    console.log(
      `authz matrix (GraphQL): ${ROWS.length} fields and variants x ${BEARER_CALLERS.length} callers = ${tried.length} cases, ` +
        `${tried.length - wrong.length} as expected, ${changedByRefusal.length} fields changed rows on refusal, ${leaks.length} leaks`,
    );
    expect(wrong.map((c) => `${c.row} as ${c.caller}: expected ${c.expected}, got ${c.got}`)).toEqual([]);
    expect(changedByRefusal).toEqual([]);
    expect(leaks.map((c) => `${c.row} as ${c.caller}`)).toEqual([]);
    expect(tried.length).toBe(ROWS.length * BEARER_CALLERS.length);
  });
});
