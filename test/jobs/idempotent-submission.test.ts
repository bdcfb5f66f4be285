// Submitting a render again with its idempotency key (REST's Idempotency-Key header, GraphQL's
// input.idempotencyKey): the same request answers the first answer again and makes one job and
// one charge, however many times and however concurrently it is sent, also when the first
// answer never reached the caller; another request under the key is refused with CONFLICT; keys
// are per user, checked, kept for their retention and then deleted by the retention loop.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBMISSION_KEY_RETENTION_HOURS } from '../../src/domain/jobs/submission-keys.ts';
import type { Loop } from '../../src/loops/loop.ts';
import { CreditWalletDocument, SubmitRenderJobDocument } from '../generated/graphql.ts';
import { problemPaths, startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { walletOf } from '../support/billing.ts';
import { controllableClock } from '../support/clock.ts';
import { renderBody, submissionStateOf } from '../support/jobs.ts';

const HOUR_MS = 3600_000;
const clock = controllableClock();
let t: TestApp;
let retention: Loop;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  retention = t.loop('job-log-retention');
});
afterAll(() => t?.close());

/** POST /v1/renders with an Idempotency-Key. */
const submit = (user: TestUser, key: string, body: Record<string, unknown>) =>
  t.rest('POST', '/v1/renders', { token: user.token, body, headers: { 'Idempotency-Key': key } });

/** submitRenderJob with an idempotency key; the mutation's result. */
async function submitOverGraphQL(user: TestUser, idempotencyKey: string, input: Record<string, unknown>) {
  const result = await t.gql(SubmitRenderJobDocument, { input: { ...input, idempotencyKey } as never }, user.token);
  expect(result.errors).toBeUndefined();
  return result.data!.submitRenderJob;
}

/** What the user's submissions made, as the user reads it: their jobs (REST) and their wallet's charges (GraphQL). */
async function madeFor(user: TestUser) {
  const jobs = await t.rest('GET', '/v1/renders', { token: user.token });
  const wallet = await walletOf(t, user.token);
  return {
    jobIds: jobs.body.data.map((job: { id: string }) => job.id),
    balance: wallet.balance,
    charges: wallet.entries.filter((entry) => entry.kind === 'Charge').map((entry) => ({ renderJobId: entry.renderJobId, amountMinor: entry.amountMinor })),
  };
}

/**
 * POST /v1/renders whose answer never reaches the caller: the connection is cut as soon as the
 * answer starts to arrive, which is after the service committed the job and its charge.
 */
async function submitLosingTheAnswer(user: TestUser, key: string, body: Record<string, unknown>): Promise<void> {
  const request = httpRequest(`${t.url}/v1/renders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': key },
  });
  const answering = once(request, 'response');
  request.end(JSON.stringify(body));
  await answering;
  request.destroy();
}

describe('a render submitted again with its idempotency key', () => {
  it('answers the same status and body, with one job and one charge (REST)', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const body = renderBody();
    const first = await submit(user, key, body);
    expect(first.status).toBe(201);

    for (let retry = 0; retry < 3; retry++) {
      const again = await submit(user, key, body);
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
    }
    expect(await madeFor(user)).toEqual({ jobIds: [first.body.id], balance: 950, charges: [{ renderJobId: first.body.id, amountMinor: -50 }] });
  });

  it('answers what the first submission answered, not what the job has become since', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const body = renderBody();
    const first = await submit(user, key, body);
    expect((await t.rest('POST', `/v1/renders/${first.body.id}/cancel`, { token: user.token })).status).toBe(200);

    const again = await submit(user, key, body);
    expect(again).toMatchObject({ status: 201, body: first.body });
    expect(again.body.step).toBe('Queued');
  });

  it('is the same request whatever the order of its fields, or a default written out', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const body = renderBody();
    const first = await submit(user, key, body);
    const reordered = Object.fromEntries(Object.entries({ ...body, price_type: 'Cash', tell_me_when_done: false }).reverse());
    expect(await submit(user, key, reordered)).toMatchObject({ status: 201, body: first.body });
    expect((await madeFor(user)).jobIds).toEqual([first.body.id]);
  });

  it('answers the same job over GraphQL, also to a key first sent over REST', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const projectId = randomUUID();
    const input = { savedProjectId: projectId, quality: 'High', resolution: 'HD', frameRate: 30, durationSec: 10 };
    const first = await submitOverGraphQL(user, key, input);
    expect(first.__typename).toBe('RenderJob');
    expect(await submitOverGraphQL(user, key, input)).toEqual(first);

    const restKey = randomUUID();
    const overRest = await submit(user, restKey, renderBody({ saved_project_id: projectId }));
    expect(await submitOverGraphQL(user, restKey, input)).toMatchObject({ __typename: 'RenderJob', id: overRest.body.id });

    const made = await madeFor(user);
    expect(made.jobIds.sort()).toEqual([(first as { id: string }).id, overRest.body.id].sort());
    expect(made.charges).toHaveLength(2);
    expect(made.balance).toBe(900);
  });

  it('refuses another request under the same key with CONFLICT, charging nothing (REST and GraphQL)', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const first = await submit(user, key, renderBody());
    expect(first.status).toBe(201);
    const before = await submissionStateOf(t, user.id);

    const other = await submit(user, key, renderBody({ quality: 'Full' }));
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'CONFLICT', details: { idempotency_key: key, render_job_id: first.body.id } });
    expect(other.body.error.message).toContain('different render request');

    const overGraphQL = await submitOverGraphQL(user, key, { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10 });
    expect(overGraphQL).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });

    expect(await submissionStateOf(t, user.id)).toEqual(before);
    expect(await madeFor(user)).toMatchObject({ jobIds: [first.body.id], balance: 950 });
  });

  it("keeps each user's keys apart: another user's same key makes their own job, and each replays their own", async () => {
    const [alice, bob] = [await t.user(1000), await t.user(1000)];
    const key = `order-${randomUUID()}`;
    const [aliceBody, bobBody] = [renderBody(), renderBody({ quality: 'Low' })];
    const alices = await submit(alice, key, aliceBody);
    const bobs = await submit(bob, key, bobBody);
    expect([alices.status, bobs.status]).toEqual([201, 201]);
    expect(bobs.body.id).not.toBe(alices.body.id);

    expect((await submit(alice, key, aliceBody)).body).toEqual(alices.body);
    expect((await submit(bob, key, bobBody)).body).toEqual(bobs.body);
    expect((await madeFor(alice)).jobIds).toEqual([alices.body.id]);
    expect((await madeFor(bob)).jobIds).toEqual([bobs.body.id]);
  });

  it('refuses a malformed key with 400 naming it, changing nothing (REST and GraphQL)', async () => {
    const user = await t.user(1000);
    const before = await submissionStateOf(t, user.id);
    for (const key of ['', 'has space', 'x'.repeat(256), 'caf\u00e9', 'a\tb']) {
      const refused = await submit(user, key, renderBody());
      expect(refused.status, JSON.stringify(key)).toBe(400);
      expect(refused.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(refused.body)).toEqual(['Idempotency-Key']);
    }
    const overGraphQL = await submitOverGraphQL(user, 'has space', { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10 });
    expect(overGraphQL).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', problems: [{ path: 'idempotencyKey' }] });
    expect(await submissionStateOf(t, user.id)).toEqual(before);

    // The longest key is a key.
    expect((await submit(user, '~'.repeat(255), renderBody())).status).toBe(201);
  });

  it('keeps no key for a refused submission: the same request with it goes through once the wallet covers it', async () => {
    const user = await t.user(40);
    const key = randomUUID();
    const body = renderBody();
    expect((await submit(user, key, body)).status).toBe(402);

    const admin = await t.token(randomUUID(), { admin: true });
    const credited = await t.gql(CreditWalletDocument, { input: { userId: user.id, amountMinor: 100, idempotencyKey: `top-up-${randomUUID()}` } }, admin);
    expect(credited.data?.creditWallet.__typename).toBe('LedgerEntry');
    const accepted = await submit(user, key, body);
    expect(accepted.status).toBe(201);
    expect(await submit(user, key, body)).toMatchObject({ status: 201, body: accepted.body });
    expect(await madeFor(user)).toMatchObject({ jobIds: [accepted.body.id], balance: 90 });
  });

  it('makes one job and one charge of 20 concurrent submissions with one key, each answered the same', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const body = renderBody();
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit(user, key, body)));

    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(201));
    const [first] = answers;
    for (const answer of answers) expect(answer.body).toEqual(first?.body);
    expect(await madeFor(user)).toEqual({ jobIds: [first?.body.id], balance: 950, charges: [{ renderJobId: first?.body.id, amountMinor: -50 }] });
  });

  it('makes one job and one charge when the answer was lost after the commit and the caller sends it again', async () => {
    const user = await t.user(1000);
    const key = randomUUID();
    const body = renderBody();
    await submitLosingTheAnswer(user, key, body);

    const retried = await submit(user, key, body);
    expect(retried.status).toBe(201);
    expect(await madeFor(user)).toEqual({ jobIds: [retried.body.id], balance: 950, charges: [{ renderJobId: retried.body.id, amountMinor: -50 }] });
  });

  it(`answers with its job for ${SUBMISSION_KEY_RETENTION_HOURS} hours; the retention loop then deletes the key`, async () => {
    const user = await t.user(1000, { ttlSeconds: 3 * 24 * 3600 });
    const key = randomUUID();
    const body = renderBody();
    const first = await submit(user, key, body);
    try {
      clock.advance((SUBMISSION_KEY_RETENTION_HOURS - 1) * HOUR_MS);
      expect(await retention.runOnce()).toMatchObject({ submissionKeys: 0 });
      expect(await submit(user, key, body)).toMatchObject({ status: 201, body: first.body });

      // The keys of the file's other tests, as old by now, go with it.
      clock.advance(2 * HOUR_MS);
      expect(await retention.runOnce()).toMatchObject({ submissionKeys: expect.any(Number) });
      const anew = await submit(user, key, body);
      expect(anew.status).toBe(201);
      expect(anew.body.id).not.toBe(first.body.id);
    } finally {
      clock.reset();
    }
    expect(await madeFor(user)).toMatchObject({ balance: 900 });
  });
});
