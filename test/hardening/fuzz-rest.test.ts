// Property-based tests of every REST operation of the contract (rest-compat/openapi.yaml): requests
// generated from each operation's schemas and broken in one place (wrong types, null, huge
// strings and arrays, unknown fields, bad UUIDs, NaN-ish and boundary numbers, out-of-enum values,
// malformed JSON, wrong media types, empty bodies) must be answered with a 4xx and the contract's
// error body, never a 5xx or a 2xx, and must leave every table of the database as it was. Valid
// generated requests then show that the generators reach the handlers.
//
// FUZZ_SEED and FUZZ_RUNS (cases per operation) reproduce a run or make it longer.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listOperations, loadContract, schemaProblems } from '../../rest-compat/contract.ts';
import { MAX_CLOCK_SKEW_SECONDS, signAgentRequest } from '../../src/adapters/auth/agent-signature.ts';
import { type HttpAnswer, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { createStoredExport } from '../support/exports.ts';
import { syncSavedProject } from '../support/projects.ts';
import { pngBytes, randomMd5 } from '../support/snapshots.ts';
import { changedTables, databaseDigest } from './authz-matrix.ts';
import { type Fixtures, type FuzzRequest, invalidRequest, operationShape, type OperationShape, validRequest } from './contract-arbitraries.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_129);
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
const VALID_RUNS = 10;

const contract = loadContract();
const shapes = listOperations(contract).map((operation) => operationShape(contract, operation));
const nameOf = (shape: OperationShape) => `${shape.operation.method} ${shape.operation.path}`;

/** Error code -> HTTP status, as the contract's Error schema lists them ("CONFLICT, INVALID_STATE or STALE_LEASE (409)"). */
const STATUS_OF_CODE = (() => {
  const error = contract.components?.schemas?.Error as { properties: { error: { properties: { code: { description: string } } } } };
  const statuses = new Map<string, number>();
  for (const [, names, status] of error.properties.error.properties.code.description.matchAll(/([A-Z_, or]+?)\s*\((\d{3})\)/g)) {
    for (const code of names!.match(/[A-Z_]{3,}/g) ?? []) statuses.set(code, Number(status));
  }
  return statuses;
})();

type Caller = { kind: 'bearer'; token: string } | { kind: 'agent'; node: TestNode } | { kind: 'none' };

interface Tally {
  tried: number;
  statuses: Map<number, number>;
}

let t: TestApp;
let owner: TestUser;
let admin: string;
let node: TestNode;
let fixtures: Fixtures;
const usedSignatures = new Set<string>();
const invalidTally = new Map<string, Tally>();
const validTally = new Map<string, Tally>();

function count(tallies: Map<string, Tally>, shape: OperationShape, status: number): void {
  const tally = tallies.get(nameOf(shape)) ?? { tried: 0, statuses: new Map() };
  tally.tried++;
  tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
  tallies.set(nameOf(shape), tally);
}

/** The credentials under which an operation reaches its validation: the callers it is meant for. */
function callerFor(shape: OperationShape): Caller {
  const schemes = shape.operation.security.flatMap((requirement) => Object.keys(requirement));
  if (schemes.includes('NodeHmac')) return { kind: 'agent', node };
  if (schemes.length === 0) return { kind: 'none' };
  if (shape.operation.tags.includes('Nodes')) return { kind: 'bearer', token: admin };
  if (shape.operation.tags.includes('SavedProjects')) return { kind: 'bearer', token: TEST_SERVICE_TOKEN };
  return { kind: 'bearer', token: owner.token };
}

/**
 * Agent headers no earlier request carried: a signature is refused when replayed, and the fuzzer
 * sends the same request more than once, so a repeat is signed at another second of the window.
 */
function freshSignature(signer: TestNode, method: string, path: string, body: Buffer | string) {
  const now = Math.floor(Date.now() / 1000);
  // Seconds well inside the accepted window (now ± MAX_CLOCK_SKEW_SECONDS), the present first.
  const margin = MAX_CLOCK_SKEW_SECONDS - 50;
  for (let offset = 0; offset <= 2 * margin; offset++) {
    const timestamp = now + (offset % 2 === 0 ? offset / 2 : -(offset + 1) / 2);
    const headers = signAgentRequest({ nodeId: signer.id, agentKey: signer.agentKey, method, path, body, timestamp });
    if (!usedSignatures.has(headers['X-Node-Signature'])) {
      usedSignatures.add(headers['X-Node-Signature']);
      return headers;
    }
  }
  throw new Error(`No unused second left to sign ${method} ${path} again`);
}

async function send(shape: OperationShape, request: FuzzRequest): Promise<HttpAnswer> {
  const url = new URL(`${t.url}${request.path}`);
  for (const [name, value] of request.query) url.searchParams.append(name, value);
  const method = shape.operation.method;
  const headers: Record<string, string> = {};
  if (request.body?.contentType) headers['content-type'] = request.body.contentType;
  const caller = callerFor(shape);
  if (caller.kind === 'bearer') headers.authorization = `Bearer ${caller.token}`;
  if (caller.kind === 'agent') {
    Object.assign(headers, freshSignature(caller.node, method, url.pathname + url.search, request.body?.bytes ?? ''));
  }
  const response = await fetch(url, { method, headers, body: request.body?.bytes });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Asserted below: an error answer that is not JSON fails expectErrorBody.
  }
  return { status: response.status, body, headers: response.headers };
}

function expectErrorBody(answer: HttpAnswer, context: string): void {
  expect(answer.headers.get('content-type'), context).toMatch(/^application\/json/);
  expect(Object.keys(answer.body ?? {}), context).toEqual(['error']);
  const error = answer.body.error as Record<string, unknown>;
  expect(Object.keys(error).sort(), context).toEqual(['code', 'details', 'message']);
  expect(typeof error.message, context).toBe('string');
  expect(typeof error.details === 'object' && error.details !== null && !Array.isArray(error.details), context).toBe(true);
  expect(STATUS_OF_CODE.get(error.code as string), `${context}: code ${String(error.code)}`).toBe(answer.status);
}

const mounted = (shape: OperationShape) =>
  t.app.http.app.hasRoute({ method: shape.operation.method as 'GET', url: `/v1${shape.operation.path.replace(/\{([a-z_]+)\}/g, ':$1')}` });

/** Runs the generated cases of one operation under the fixed seed; every answer goes through check. */
async function fuzz(shape: OperationShape, cases: fc.Arbitrary<FuzzRequest>, runs: number, check: (request: FuzzRequest, answer: HttpAnswer) => void) {
  const seed = SEED + createHash('sha256').update(nameOf(shape)).digest().readUInt16BE(0);
  await fc.assert(
    fc.asyncProperty(cases, async (request) => {
      check(request, await send(shape, request));
    }),
    { seed, numRuns: runs, endOnFailure: true },
  );
}

beforeAll(async () => {
  console.log(`fuzz-rest: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
  // Rate limits have tests of their own; here they would turn long runs into 429s that never reach validation.
  t = await startTestApp({ startLoops: false, env: { RATE_LIMIT_USER_REQUESTS: '0', RATE_LIMIT_NODE_REQUESTS: '0' } });
  owner = await t.user(1_000_000_000);
  admin = await t.token(crypto.randomUUID(), { admin: true });
  const md5 = randomMd5();
  const projectId = crypto.randomUUID();
  await syncSavedProject(t, { owner_user_id: owner.id, name: 'Fuzzed', duration_sec: 10, aep_file_md5: md5, ae_version: '24.1' }, projectId);
  node = await t.onlineNode('fuzz-node');
  const job = await t.rest('POST', '/v1/renders', { token: owner.token, body: { saved_project_id: projectId, quality: 'High', resolution: 'FullHD' } });
  expect(job.status, JSON.stringify(job.body)).toBe(201);
  const snapshot = await t.rest('POST', '/v1/snapshots', { token: owner.token, body: { saved_project_id: projectId, scene_key: 'intro', frame_number: 5 } });
  expect(snapshot.status).toBe(202);
  await t.app.services.scheduler.assignWork();
  const exported = await createStoredExport(t, owner.id);
  const update = await t.rest('POST', '/v1/node-updates', {
    token: admin,
    body: { update_file_name: 'agent.msi', update_number: 7, target_ae_version: '24.1', download_key: 'updates/agent.msi', sha256: 'a'.repeat(64) },
  });
  expect(update.status, JSON.stringify(update.body)).toBe(201);
  const frameJob = await t.app.services.db.prisma.frameJob.findFirst({ where: { renderJobId: job.body.id } });
  const command = await t.app.services.db.prisma.nodeCommand.findFirstOrThrow({ where: { nodeId: node.id } });

  fixtures = {
    job_id: fc.constant(job.body.id),
    current_job_id: fc.constant(job.body.id),
    snapshot_id: fc.constant(snapshot.body.snapshot_id),
    export_id: fc.constant(exported.id),
    node_id: fc.constant(node.id),
    node_ids: fc.constant([node.id]),
    update_id: fc.constant(update.body.id),
    saved_project_id: fc.constant(projectId),
    frame_job_id: frameJob ? fc.constant(frameJob.id) : fc.uuid(),
    // The work the scheduler gave the node: acknowledging it again is harmless, so valid cases succeed.
    command_id: fc.constant(command.id),
    owner_user_id: fc.constant(owner.id),
    aep_file_md5: fc.constant(md5),
    cached_template_md5s: fc.constant([md5]),
    ae_version: fc.constant('24.1'),
    current_ae_version: fc.constant('24.1'),
    available_ae_versions: fc.constant(['24.1']),
    // Rules the service adds to what the contract says, so that valid cases are often accepted.
    node_ip: fc.ipV4(),
    replica_md5: fc.constant(md5),
    discount_code: fc.constant(undefined),
    download_url: fc.constant(undefined),
    region: fc.constantFrom('eu', 'us-east'),
    format: fc.constantFrom('mp4', 'gif', 'webm'),
    'body:bytes': fc.integer({ min: 16, max: 256 }).map(pngBytes),
  };

}, 60_000);

function histogram(name: string, what: string, tallies: Map<string, Tally>): string {
  const tally = tallies.get(name);
  if (!tally) return `no ${what} cases`;
  return `${tally.tried} ${what} -> ${[...tally.statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ')}`;
}

afterAll(async () => {
  const total = (tallies: Map<string, Tally>) => [...tallies.values()].reduce((sum, tally) => sum + tally.tried, 0);
  const statusCount = (tallies: Map<string, Tally>, test: (status: number) => boolean) =>
    [...tallies.values()].reduce((sum, tally) => sum + [...tally.statuses].filter(([status]) => test(status)).reduce((s, [, n]) => s + n, 0), 0);
  console.log(
    [
      `fuzz-rest: ${invalidTally.size} operations, ${total(invalidTally)} invalid cases tried, ` +
        `5xx found: ${statusCount(invalidTally, (status) => status >= 500)}, 2xx found: ${statusCount(invalidTally, (status) => status < 300)}, ` +
        `database changes: ${databaseChanges}`,
      `fuzz-rest: ${total(validTally)} valid cases tried, ${statusCount(validTally, (status) => status < 300)} accepted, 5xx found: ${statusCount(validTally, (status) => status >= 500)}`,
      ...shapes.map(nameOf).filter((name) => invalidTally.has(name) || validTally.has(name)).map((name) => `  ${name}: ${histogram(name, 'invalid', invalidTally)}; ${histogram(name, 'valid', validTally)}`),
    ].join('\n'),
  );
  await t?.close();
});

let databaseChanges = 0;

describe('every REST operation refuses broken input with a 4xx and the error body, and changes nothing', () => {
  for (const shape of shapes) {
    it(nameOf(shape), async (context) => {
      if (!mounted(shape)) context.skip();
      const cases = invalidRequest(shape, fixtures);
      if (!cases) context.skip();
      const before = await databaseDigest(t);
      const refusal = await fuzz(shape, cases!, RUNS, (request, answer) => {
        count(invalidTally, shape, answer.status);
        const context = `${nameOf(shape)} ${fc.stringify(request)} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
        expect(answer.status, context).toBeGreaterThanOrEqual(400);
        expect(answer.status, context).toBeLessThan(500);
        // The callers are the ones the operation is for, so a refusal of their credentials means
        // the generated requests never reached validation.
        expect(answer.status, context).not.toBe(401);
        expectErrorBody(answer, context);
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      const changed = changedTables(before, await databaseDigest(t));
      databaseChanges += changed.length;
      if (refusal) throw Object.assign(refusal as Error, { message: `${(refusal as Error).message}\nTables changed: ${changed.join(', ') || 'none'}` });
      expect(changed, `${nameOf(shape)}: tables changed by refused requests`).toEqual([]);
    }, 120_000);
  }
});

describe('valid generated requests reach the handlers', () => {
  for (const shape of shapes) {
    it(nameOf(shape), async (context) => {
      if (!mounted(shape)) context.skip();
      await fuzz(shape, validRequest(shape, fixtures), VALID_RUNS, (request, answer) => {
        count(validTally, shape, answer.status);
        const context = `${nameOf(shape)} ${fc.stringify(request)} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
        expect(answer.status, context).toBeLessThan(500);
        expect([401, 413, 415], context).not.toContain(answer.status);
        if (answer.status >= 400) expectErrorBody(answer, context);
        else {
          // An accepted request gets a status the contract documents, with a body of its schema.
          expect(Object.keys(shape.responses), context).toContain(String(answer.status));
          const schema = shape.responses[String(answer.status)];
          if (schema) expect(schemaProblems(schema, answer.body), context).toEqual([]);
        }
      });
    }, 60_000);
  }

  it('and some of them are accepted', () => {
    const accepted = [...validTally.values()].filter((tally) => [...tally.statuses.keys()].some((status) => status < 300));
    expect(accepted.length).toBeGreaterThan(shapes.length / 2);
  });
});

// Findings of the fuzzer, kept as named examples.
describe('regressions', () => {
  it('a malformed percent-encoding in the path is refused with 400 and the error body, not the router’s own', async () => {
    for (const path of ['/v1/renders/%', '/v1/nodes/%zz/health']) {
      const answer = await send(shapes.find((shape) => nameOf(shape) === 'GET /renders/{job_id}')!, { mutation: 'regression', path, query: [] });
      expect(answer.status).toBe(400);
      expectErrorBody(answer, path);
      expect(answer.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('a page number must be written in decimal digits: 0x10, 1e1 or an empty value are refused, not read as 16, 10 or 0', async () => {
    for (const page of ['0x10', '1e1', '', ' 2 ']) {
      const answer = await t.rest('GET', `/v1/exports?page=${encodeURIComponent(page)}`, { token: owner.token });
      expect(answer.status, page).toBe(400);
      expectErrorBody(answer, page);
      expect(answer.body.error.details.problems, page).toEqual([{ path: 'page', message: 'must be a whole number' }]);
    }
  });

  it('text with a NUL character, which PostgreSQL cannot store, is refused with 400 instead of failing with 500', async () => {
    const synced = await t.rest('PUT', `/v1/saved-projects/${crypto.randomUUID()}`, { token: TEST_SERVICE_TOKEN, body: { name: 'a\u0000b', duration_sec: 5 } });
    expect(synced.status).toBe(400);
    expectErrorBody(synced, 'NUL in a body field');
    expect(synced.body.error.details.problems).toEqual([{ path: 'name', message: 'must not contain NUL characters' }]);
    const snapshotId = (await t.app.services.db.prisma.snapshot.findFirstOrThrow()).id;
    const upload = await t.signed(node, 'PUT', `/v1/internal/snapshots/${snapshotId}/image?lease=a%00b`, pngBytes(64));
    expect(upload.status).toBe(400);
    expectErrorBody(upload, 'NUL in a query parameter');
  });

  it('the lease of an output upload, a query parameter, is parsed: a NUL is refused with 400 instead of failing in SQL with 500, a repeated one with 400 instead of being dropped', async () => {
    const jobId = (await t.app.services.db.prisma.renderJob.findFirstOrThrow()).id;
    for (const query of ['lease=a%00b', 'lease=a&lease=a']) {
      const upload = await t.signed(node, 'PUT', `/v1/internal/render/jobs/${jobId}/outputs/mp4?${query}`, Buffer.from('encoded'));
      expect(upload.status, query).toBe(400);
      expectErrorBody(upload, query);
      expect(upload.body.error.details.problems.map((problem: { path: string }) => problem.path), query).toEqual(['lease']);
    }
  });

  it('a field holding arrays nested 200,000 deep is refused with 400, not a stack overflow and 500', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const answer = await t.rest('POST', '/v1/snapshots', {
      token: owner.token,
      rawBody: `{"saved_project_id":"${crypto.randomUUID()}","scene_key":${deep},"frame_number":1}`,
    });
    expect(answer.status).toBe(400);
    expectErrorBody(answer, 'deep nesting');
  });

  it('the longest job the contract allows (3600 s at 60 fps, 216,000 frames) is accepted, not cut short by a transaction timeout and 500', async () => {
    const projectId = crypto.randomUUID();
    await syncSavedProject(t, { owner_user_id: owner.id, name: 'Longest', duration_sec: 3600 }, projectId);
    const job = await t.rest('POST', '/v1/renders', { token: owner.token, body: { saved_project_id: projectId, quality: 'Low', resolution: 'HD', frame_rate: 60 } });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    expect(await t.app.services.db.prisma.frame.count({ where: { renderJobId: job.body.id } })).toBe(216_000);
  }, 60_000);

  it('a path parameter over the router’s length limit is refused with 400 VALIDATION_FAILED, not 414 and the router’s body', async () => {
    const answer = await t.rest('GET', `/v1/renders/${'a'.repeat(4000)}`, { token: owner.token });
    expect(answer.status).toBe(400);
    expectErrorBody(answer, 'overlong job_id');
    expect(answer.body.error.code).toBe('VALIDATION_FAILED');
  });
});
