// The soak's simulated users: they submit renders (Free and Cash, some with discount codes) over
// REST and GraphQL, cancel and retry them, ask for snapshots, extend and delete exports and read
// their jobs and wallets, at a steady pace, while replicas die, PostgreSQL restarts and Redis goes
// away. Every request and answer is recorded in the RequestHistory.
//
// How they stay correct through faults:
// - No answer (status 0, a 15 s timeout included) or a 5xx: the user moves to the next replica
//   and sends again after a short wait; 503 and 429 wait the Retry-After seconds first.
// - Before a change that may have landed is sent again, it is made safe: submissions carry an
//   Idempotency-Key (the same key and body answer the first job); a lost retry is looked for
//   among the user's jobs (a job of the same saved project one retry further that the user does
//   not know yet); a lost extension is looked for in the export's auto-delete date. Cancels and
//   export deletions are idempotent in effect: their repeat is answered 409 (job already
//   Cancelled) or 404 (export gone), which counts as done.
// - Each user does one operation at a time, so what a reconciliation finds can only be its own.
//
// Jobs are short (1 to 3 s at 24 or 25 fps: 24 to 75 frames) and at most `maxInFlight` of them are
// unfinished at once, so the fleet drains the farm.
import { randomUUID } from 'node:crypto';
import { between, createRandom, type Random, streamSeed } from '../../agent-sim/random.ts';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { isTerminal } from './steps.ts';
import { type RequestHistory, statusOfCode, statusOfGraphQLError } from './history.ts';

export interface UserWorkloadOptions {
  urls: readonly string[];
  /** How many simulated users. */
  users: number;
  /** Seeded choices (which user, which operation, which door, which job). */
  seed: number;
  jwtSecret: string;
  history: RequestHistory;
  /** Operations per second across all users (default 2). */
  rate?: number;
  /** Called for every job a user submitted (accepted) and every retry job made, with the owner's token, so subscribers follow it. */
  onJob?: (job: { id: string; token: string }) => void;
  /** Unfinished jobs at most; no submission or retry while there are this many (default 30). */
  maxInFlight?: number;
  /** Timeout of one request (default 15 s). */
  requestTimeoutMs?: number;
}

export interface UserWorkload {
  /** Stops making new operations; resolves once none is under way. */
  stop(): Promise<void>;
  /** Operations by kind and outcome, e.g. { 'submit ok': 40, 'cancel ok': 5, 'snapshot refused': 1 }. */
  stats(): Record<string, number>;
  /** Every job id the users made (submitted or retried), for the checker. */
  jobs(): string[];
  /** The users' ids. */
  userIds(): string[];
}

/** The After Effects version the soak's fleet runs. */
export const SOAK_AE_VERSION = '24.1';
const DEFAULT_RATE = 2;
const DEFAULT_MAX_IN_FLIGHT = 30;
const DEFAULT_TIMEOUT_MS = 15_000;
/** How long one operation keeps trying through faults before it gives up (counted as failed). */
const OPERATION_DEADLINE_MS = 90_000;
/** Setup (credits, codes, projects) gets longer: without it the users cannot do much. */
const SETUP_DEADLINE_MS = 180_000;
/** After stop(), requests under way get this long before they are cut. */
const STOP_GRACE_MS = 3_000;
const TOKEN_TTL_SECONDS = 7 * 24 * 3600;
const RICH_WALLET_MINOR = 1_000_000;
/** Every fifth user has only this: a few Cash renders, then 402. */
const POOR_WALLET_MINOR = 400;
const PROJECTS_PER_USER = 2;
/** The refresher reads this many of a user's newest jobs at once: the unfinished ones are among them. */
const REFRESH_PAGE = 50;
const SCENES = ['intro', 'main', 'outro'];

type Op =
  | 'submit'
  | 'cancel'
  | 'retry'
  | 'snapshot'
  | 'extend'
  | 'delete-export'
  | 'list'
  | 'job'
  | 'progress'
  | 'wallet'
  | 'exports'
  | 'snapshot-read';

/** Relative weights of the operations; those that do not apply (nothing to cancel) are left out of a draw. */
export const OPERATION_WEIGHTS: Readonly<Record<Op, number>> = {
  submit: 26,
  cancel: 8,
  retry: 6,
  snapshot: 8,
  extend: 6,
  'delete-export': 3,
  list: 12,
  job: 12,
  progress: 6,
  wallet: 6,
  exports: 4,
  'snapshot-read': 3,
};

interface KnownJob {
  id: string;
  step: string;
  savedProjectId: string;
  retryCount: number;
  exportId: string | null;
  exportDeleted: boolean;
  /** A retry of it was made (or found): it is not retried again. */
  retried: boolean;
}

interface SimUser {
  index: number;
  id: string;
  token: string;
  replica: number;
  busy: boolean;
  jobs: Map<string, KnownJob>;
  /** Synced saved projects: id -> template md5. */
  projects: string[];
  snapshots: string[];
  lastRefresh: number;
  refreshing: boolean;
  poor: boolean;
}

/** One answer, REST or GraphQL, as the history records it. */
interface Answer {
  /** HTTP status; for GraphQL the status its error (or typed error result) stands for. */
  status: number;
  /** Error code (REST error.code, GraphQL extensions.code or a typed error's code). */
  code?: string;
  /** REST: the JSON body; GraphQL: `data`. */
  body: any;
  /** The error's details (REST) or the typed error result (GraphQL). */
  details?: Record<string, any>;
  retryAfterSec?: number;
  replica: number;
}

interface Settled extends Answer {
  /** Attempts whose answer was lost (no answer, or 5xx): the change may have landed. */
  lost: number;
  /** Found by a reconciliation rather than answered. */
  reconciled?: boolean;
  /** The operation's deadline passed (or the workload stopped) without a final answer. */
  gaveUp?: boolean;
}

const retryable = (status: number) => status === 0 || status >= 500 || status === 429;
/**
 * An answer after which the change may have been made: no answer, or a 5xx (a 503 too: the
 * database may have gone away after the commit, before the answer).
 */
const mayHaveLanded = (status: number) => status === 0 || status >= 500;

class Stopped extends Error {}

export async function startUsers(options: UserWorkloadOptions): Promise<UserWorkload> {
  const { urls, history } = options;
  if (urls.length === 0) throw new Error('startUsers: no replica urls');
  const rate = options.rate ?? DEFAULT_RATE;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const random: Random = createRandom(streamSeed(options.seed, 0, 71));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number) => random() < p;

  const counts = new Map<string, number>();
  const count = (key: string, by = 1): void => {
    counts.set(key, (counts.get(key) ?? 0) + by);
  };
  const allJobs: string[] = [];

  let stopping = false;
  const stopController = new AbortController();
  const sleeps = new Set<() => void>();
  const running = new Set<Promise<void>>();
  /** Submissions and retries under way: each may add an unfinished job. */
  let creating = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const wake = () => {
        clearTimeout(timer);
        sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleeps.add(wake);
    });

  const wsUrl = (index: number) => urls[index % urls.length] as string;

  // ---- one request -------------------------------------------------------------------------

  async function fetchOnce(
    replica: number,
    method: string,
    path: string,
    init: { token?: string; json?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers?: Headers }> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    let payload: string | undefined;
    if (init.json !== undefined) {
      payload = JSON.stringify(init.json);
      headers['content-type'] = 'application/json';
    }
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), stopController.signal]);
    try {
      const response = await fetch(`${wsUrl(replica)}${path}`, { method, headers, body: payload, signal });
      const text = await response.text();
      let body: any = text;
      if (text !== '' && (response.headers.get('content-type') ?? '').includes('json')) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      return { status: response.status, body, headers: response.headers };
    } catch (error) {
      if (stopController.signal.aborted) throw new Stopped();
      void error;
      return { status: 0, body: undefined };
    }
  }

  const retryAfterOf = (headers: Headers | undefined): number | undefined => {
    const value = Number(headers?.get('retry-after'));
    return Number.isFinite(value) && value > 0 ? value : undefined;
  };

  async function rest(
    replica: number,
    method: string,
    path: string,
    route: string,
    init: { token?: string; json?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const answer = await fetchOnce(replica, method, path, init);
    history.record({ door: 'rest', route, replica: replica % urls.length, status: answer.status, at: Date.now() });
    const error = answer.body && typeof answer.body === 'object' ? answer.body.error : undefined;
    return {
      status: answer.status,
      code: typeof error?.code === 'string' ? error.code : undefined,
      body: answer.body,
      details: error?.details,
      retryAfterSec: retryAfterOf(answer.headers),
      replica,
    };
  }

  /** A GraphQL operation over HTTP; `field` names the mutation whose result union may be a typed error. */
  async function graphql(replica: number, route: string, token: string, query: string, variables: Record<string, unknown>, field?: string): Promise<Answer> {
    const answer = await fetchOnce(replica, 'POST', '/graphql', { token, json: { query, variables } });
    let status = answer.status;
    let code: string | undefined;
    let details: Record<string, any> | undefined;
    const body = answer.body && typeof answer.body === 'object' ? answer.body : undefined;
    const errors: any[] = Array.isArray(body?.errors) ? body.errors : [];
    if (status !== 0 && !(status >= 500) && status !== 429) {
      if (errors.length > 0) {
        // The most severe error decides.
        let worst = 0;
        for (const error of errors) {
          const errorStatus = statusOfGraphQLError(error);
          if (errorStatus > worst) {
            worst = errorStatus;
            code = error?.extensions?.code;
            details = error?.extensions?.details;
          }
        }
        status = worst;
      } else if (body === undefined) {
        status = status === 200 ? 502 : status;
      } else if (field) {
        const result = body.data?.[field];
        if (result && typeof result.__typename === 'string' && result.__typename.endsWith('Error')) {
          code = typeof result.code === 'string' ? result.code : undefined;
          status = code ? statusOfCode(code) : 400;
          details = result;
        }
      }
    } else if (errors.length > 0) {
      code = errors[0]?.extensions?.code;
    }
    history.record({ door: 'graphql', route, replica: replica % urls.length, status, at: Date.now() });
    return { status, code, body: body?.data, details, retryAfterSec: retryAfterOf(answer.headers), replica };
  }

  // ---- through faults ------------------------------------------------------------------------

  /**
   * Sends until the answer is final: not lost, not 5xx, not 429. `reconcile` runs before sending
   * again after an attempt that may have landed; an answer it gives settles the operation.
   */
  async function persist(
    user: SimUser,
    send: (replica: number) => Promise<Answer>,
    options: { deadlineMs?: number; reconcile?: (replica: number) => Promise<Answer | undefined>; sticky?: boolean } = {},
  ): Promise<Settled> {
    const deadline = Date.now() + (options.deadlineMs ?? OPERATION_DEADLINE_MS);
    let lost = 0;
    let failures = 0;
    let replica = options.sticky === false ? Math.floor(random() * urls.length) : user.replica;
    for (;;) {
      const answer = await send(replica);
      if (!retryable(answer.status)) return { ...answer, lost };
      if (mayHaveLanded(answer.status)) lost++;
      failures++;
      replica = (replica + 1) % urls.length;
      user.replica = replica;
      if (stopping || Date.now() > deadline) return { ...answer, lost, gaveUp: true };
      const wait =
        answer.status === 503 || answer.status === 429
          ? Math.min(10, answer.retryAfterSec ?? 1) * 1000
          : Math.min(2000, 200 * 2 ** Math.min(failures - 1, 4));
      await sleep(wait + Math.floor(random() * 200));
      if (stopping) return { ...answer, lost, gaveUp: true };
      if (lost > 0 && options.reconcile) {
        const found = await options.reconcile(replica);
        if (found) return { ...found, lost, reconciled: true };
      }
    }
  }

  // ---- users ---------------------------------------------------------------------------------

  const adminId = randomUUID();
  const adminToken = await signDevelopmentToken(options.jwtSecret, { sub: adminId, admin: true, ttlSeconds: TOKEN_TTL_SECONDS });
  const admin: SimUser = newUser(-1, adminId, adminToken);
  function newUser(index: number, id: string, token: string): SimUser {
    return {
      index,
      id,
      token,
      replica: Math.max(0, index) % urls.length,
      busy: false,
      jobs: new Map(),
      projects: [],
      snapshots: [],
      lastRefresh: 0,
      refreshing: false,
      poor: false,
    };
  }
  const users: SimUser[] = [];
  for (let index = 0; index < options.users; index++) {
    const id = randomUUID();
    users.push(newUser(index, id, await signDevelopmentToken(options.jwtSecret, { sub: id, ttlSeconds: TOKEN_TTL_SECONDS })));
  }

  const runTag = randomUUID().slice(0, 8);
  const codes: { code: string; usable: boolean }[] = [];

  // ---- setup: wallets, discount codes, saved projects -----------------------------------------

  const CREDIT = `mutation CreditWallet($input: CreditWalletInput!) {
    creditWallet(input: $input) { __typename ... on LedgerEntry { id balanceAfterMinor } ... on DomainError { code message } } }`;
  const CREATE_CODE = `mutation CreateDiscountCode($input: CreateDiscountCodeInput!) {
    createDiscountCode(input: $input) { __typename ... on DiscountCode { code } ... on DomainError { code message } } }`;

  async function credit(user: SimUser): Promise<void> {
    user.poor = user.index % 5 === 4;
    const input = {
      userId: user.id,
      amountMinor: user.poor ? POOR_WALLET_MINOR : RICH_WALLET_MINOR,
      idempotencyKey: `soak-credit-${runTag}-${user.id}`,
      description: 'soak funds',
    };
    // Repeating the key credits once, so a lost answer is simply sent again.
    const answer = await persist(admin, (replica) => graphql(replica, 'mutation creditWallet', adminToken, CREDIT, { input }, 'creditWallet'), {
      deadlineMs: SETUP_DEADLINE_MS,
    });
    count(answer.status === 200 ? 'credit ok' : `credit failed ${answer.status}${answer.code ? ` ${answer.code}` : ''}`);
  }

  async function createCode(input: Record<string, unknown>): Promise<void> {
    const answer = await persist(admin, (replica) => graphql(replica, 'mutation createDiscountCode', adminToken, CREATE_CODE, { input }, 'createDiscountCode'), {
      deadlineMs: SETUP_DEADLINE_MS,
    });
    // A CONFLICT after a lost answer is the code the lost attempt created.
    if (answer.status === 200 || (answer.status === 409 && answer.lost > 0)) {
      count('discount-code ok');
      codes.push({ code: input.code as string, usable: true });
    } else {
      count(`discount-code failed ${answer.status}${answer.code ? ` ${answer.code}` : ''}`);
    }
  }

  async function syncProject(user: SimUser): Promise<void> {
    const id = randomUUID();
    const md5 = randomUUID().replace(/-/g, '');
    const body = { owner_user_id: user.id, name: `soak ${runTag} project ${user.index}-${user.projects.length}`, duration_sec: 2, aep_file_md5: md5, ae_version: SOAK_AE_VERSION };
    // Syncing again replaces the facts with the same ones: safe to repeat.
    const answer = await persist(admin, (replica) => rest(replica, 'PUT', `/v1/saved-projects/${id}`, 'PUT /v1/saved-projects/{id}', { token: adminToken, json: body }), {
      deadlineMs: SETUP_DEADLINE_MS,
    });
    if (answer.status === 200) {
      count('sync-project ok');
      user.projects.push(id);
    } else {
      count(`sync-project failed ${answer.status}${answer.code ? ` ${answer.code}` : ''}`);
    }
  }

  async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, items.length) }, async () => {
        while (next < items.length && !stopping) {
          const item = items[next++] as T;
          try {
            await work(item);
          } catch (error) {
            if (!(error instanceof Stopped)) throw error;
          }
        }
      }),
    );
  }

  await eachLimited(
    [
      { code: `SOAK-${runTag}-P10`, percentOff: 10 },
      { code: `SOAK-${runTag}-P50`, percentOff: 50 },
      { code: `SOAK-${runTag}-A20`, amountOffMinor: 20 },
      { code: `SOAK-${runTag}-LIM`, percentOff: 25, maxUses: 5 },
    ],
    2,
    createCode,
  );
  await eachLimited(users, 4, async (user) => {
    await credit(user);
    for (let n = 0; n < PROJECTS_PER_USER; n++) await syncProject(user);
  });

  // ---- what users know of their jobs ----------------------------------------------------------

  const unfinished = () => {
    let n = creating;
    for (const user of users) for (const job of user.jobs.values()) if (!isTerminal(job.step)) n++;
    return n;
  };

  function learned(user: SimUser, job: { id: string; step?: string; export_id?: string | null; exportId?: string | null }) {
    const known = user.jobs.get(job.id);
    if (!known) return;
    if (typeof job.step === 'string') known.step = job.step;
    const exportId = job.export_id ?? job.exportId;
    if (typeof exportId === 'string') known.exportId = exportId;
  }

  function adopt(user: SimUser, job: { id: string; step: string; savedProjectId: string; retryCount: number }) {
    if (user.jobs.has(job.id)) return;
    user.jobs.set(job.id, { ...job, exportId: null, exportDeleted: false, retried: false });
    allJobs.push(job.id);
    try {
      options.onJob?.({ id: job.id, token: user.token });
    } catch {
      // The subscriber side's trouble is not the user's.
    }
  }

  // ---- GraphQL documents ------------------------------------------------------------------------

  const JOB_FIELDS = 'id step savedProjectId retryCount exportId';
  const SUBMIT = `mutation SubmitRenderJob($input: SubmitRenderJobInput!) {
    submitRenderJob(input: $input) { __typename ... on RenderJob { ${JOB_FIELDS} } ... on DomainError { code message } } }`;
  const CANCEL = `mutation CancelRenderJob($id: UUID!, $reason: String) {
    cancelRenderJob(id: $id, reason: $reason) { __typename ... on CancelledRenderJob { cancelled refundAmountMinor job { id step } }
      ... on InvalidStateError { code message state } ... on DomainError { code message } } }`;
  const RETRY = `mutation RetryRenderJob($id: UUID!) {
    retryRenderJob(id: $id) { __typename ... on RenderJob { ${JOB_FIELDS} } ... on InvalidStateError { code message state } ... on DomainError { code message } } }`;
  const SNAPSHOT = `mutation RequestSnapshot($input: RequestSnapshotInput!) {
    requestSnapshot(input: $input) { __typename ... on Snapshot { id status } ... on DomainError { code message } } }`;
  const EXTEND = `mutation ExtendExport($id: UUID!, $days: Int!) {
    extendExport(id: $id, days: $days) { __typename ... on ExportExtension { newAutoDeleteDate chargedMinor } ... on DomainError { code message } } }`;
  const DELETE_EXPORT = `mutation DeleteExport($id: UUID!) {
    deleteExport(id: $id) { __typename ... on DeletedExport { id } ... on DomainError { code message } } }`;
  const JOBS = `query RenderJobs($first: Int) { renderJobs(first: $first) { edges { node { ${JOB_FIELDS} } } } }`;
  const JOB = `query RenderJob($id: UUID!) { renderJob(id: $id) { ${JOB_FIELDS} } }`;
  const PROGRESS = `query RenderProgress($jobId: UUID!) { renderProgress(jobId: $jobId) { jobId seq step progress } }`;
  const WALLET = `query Wallet { wallet { balanceMinor entries(first: 5) { edges { node { kind amountMinor } } } } }`;
  const EXPORTS = `query Exports { exports(first: 20) { edges { node { id renderJobId autoDeleteDate } } } }`;
  const EXPORT = `query Export($id: UUID!) { export(id: $id) { id autoDeleteDate } }`;
  const SNAPSHOT_READ = `query Snapshot($id: UUID!) { snapshot(id: $id) { id status } }`;

  const outcome = (answer: Settled) => `${answer.status}${answer.code ? ` ${answer.code}` : ''}`;
  /** Counts an answer that is neither success nor an expected refusal. */
  function unexpected(op: Op, answer: Settled): void {
    if (answer.gaveUp) count(stopping ? `${op} abandoned at stop` : `${op} failed`);
    else count(`${op} unexpected ${outcome(answer)}`);
  }

  // ---- operations ------------------------------------------------------------------------------

  async function submit(user: SimUser): Promise<void> {
    const useGraphql = chance(0.4);
    const synced = user.projects.length > 0 && chance(0.35);
    const savedProjectId = synced ? pick(user.projects) : randomUUID();
    // A poor user whose money ran out mostly renders for free.
    const priceType = chance(user.poor ? 0.7 : 0.5) ? 'Free' : 'Cash';
    const usable = codes.filter((code) => code.usable);
    const discount = priceType === 'Cash' && usable.length > 0 && chance(0.4) ? pick(usable) : undefined;
    const quality = pick(['Low', 'Medium']);
    const resolution = priceType === 'Free' ? 'HD' : pick(['HD', 'FullHD']);
    const frameRate = chance(0.8) ? 24 : 25;
    const durationSec = between(random, 1, 3);
    const key = randomUUID();
    const name = `soak ${runTag} ${user.index}`;
    creating++;
    try {
      let answer: Settled;
      if (useGraphql) {
        const input = {
          savedProjectId,
          quality,
          resolution,
          frameRate,
          priceType,
          durationSec,
          aeVersion: SOAK_AE_VERSION,
          name,
          ...(discount ? { discountCode: discount.code } : {}),
          idempotencyKey: key,
        };
        answer = await persist(user, (replica) => graphql(replica, 'mutation submitRenderJob', user.token, SUBMIT, { input }, 'submitRenderJob'));
      } else {
        const body = {
          saved_project_id: savedProjectId,
          quality,
          resolution,
          frame_rate: frameRate,
          price_type: priceType,
          duration_sec: durationSec,
          ae_version: SOAK_AE_VERSION,
          name,
          ...(discount ? { discount_code: discount.code } : {}),
        };
        // The same key and body answer the first submission's job: repeating is safe.
        answer = await persist(user, (replica) =>
          rest(replica, 'POST', '/v1/renders', 'POST /v1/renders', { token: user.token, json: body, headers: { 'idempotency-key': key } }),
        );
      }
      const job = useGraphql ? answer.body?.submitRenderJob : answer.body;
      if ((answer.status === 201 || answer.status === 200) && typeof job?.id === 'string') {
        adopt(user, { id: job.id, step: job.step ?? 'Queued', savedProjectId, retryCount: 0 });
        count('submit ok');
        if (answer.lost > 0) count('submit recovered');
        return;
      }
      if (answer.status === 402) {
        user.poor = true;
        return count('submit refused');
      }
      if (answer.status === 400 && discount && JSON.stringify(answer.details ?? {}).toLowerCase().includes('discount')) {
        // The limited code is used up: a legitimate refusal.
        discount.usable = false;
        return count('submit refused');
      }
      unexpected('submit', answer);
    } finally {
      creating--;
    }
  }

  async function cancel(user: SimUser, job: KnownJob): Promise<void> {
    const useGraphql = chance(0.4);
    const reason = chance(0.5) ? 'soak: changed my mind' : undefined;
    const answer = useGraphql
      ? await persist(user, (replica) => graphql(replica, 'mutation cancelRenderJob', user.token, CANCEL, { id: job.id, reason }, 'cancelRenderJob'))
      : await persist(user, (replica) =>
          rest(replica, 'POST', `/v1/renders/${job.id}/cancel`, 'POST /v1/renders/{id}/cancel', { token: user.token, ...(reason ? { json: { reason } } : {}) }),
        );
    if (answer.status === 200) {
      job.step = 'Cancelled';
      count('cancel ok');
      if (answer.lost > 0) count('cancel recovered');
      return;
    }
    if (answer.status === 409 && answer.code === 'INVALID_STATE') {
      const step = (useGraphql ? answer.details?.state : answer.details?.step) as string | undefined;
      if (step) job.step = step;
      // A lost cancel that landed: its repeat finds the job Cancelled.
      if (step === 'Cancelled' && answer.lost > 0) {
        count('cancel ok');
        return count('cancel already done');
      }
      // The job ended (completed, failed or cancelled) before the cancel arrived.
      return count('cancel refused');
    }
    unexpected('cancel', answer);
  }

  /** The job a lost retry of `job` made, if it landed: one of the user's jobs the user does not know yet. */
  async function findRetryOf(user: SimUser, job: KnownJob, replica: number): Promise<Answer | undefined> {
    const answer = await persist(user, (r) => graphql(r, 'query renderJobs', user.token, JOBS, { first: 50 }), { deadlineMs: 30_000 });
    void replica;
    if (answer.status !== 200) return undefined;
    const nodes = (answer.body?.renderJobs?.edges ?? []).map((edge: any) => edge.node);
    const made = nodes.find(
      (node: any) => node && !user.jobs.has(node.id) && node.savedProjectId === job.savedProjectId && node.retryCount === job.retryCount + 1,
    );
    return made ? { status: 201, body: made, replica: answer.replica } : undefined;
  }

  async function retry(user: SimUser, job: KnownJob): Promise<void> {
    const useGraphql = chance(0.4);
    creating++;
    try {
      const reconcile = (replica: number) => findRetryOf(user, job, replica);
      const answer = useGraphql
        ? await persist(user, (replica) => graphql(replica, 'mutation retryRenderJob', user.token, RETRY, { id: job.id }, 'retryRenderJob'), { reconcile })
        : await persist(user, (replica) => rest(replica, 'POST', `/v1/renders/${job.id}/retry`, 'POST /v1/renders/{id}/retry', { token: user.token }), {
            reconcile,
          });
      const made = answer.reconciled ? answer.body : useGraphql ? answer.body?.retryRenderJob : answer.body;
      if ((answer.status === 201 || answer.status === 200) && typeof made?.id === 'string') {
        job.retried = true;
        adopt(user, { id: made.id, step: made.step ?? 'Queued', savedProjectId: job.savedProjectId, retryCount: job.retryCount + 1 });
        count('retry ok');
        if (answer.reconciled) count('retry recovered');
        return;
      }
      if (answer.status === 402) {
        user.poor = true;
        return count('retry refused');
      }
      if (answer.status === 409 && answer.code === 'INVALID_STATE') {
        const step = (useGraphql ? answer.details?.state : answer.details?.step) as string | undefined;
        if (step) job.step = step;
        return count('retry refused');
      }
      unexpected('retry', answer);
    } finally {
      creating--;
    }
  }

  async function snapshot(user: SimUser, job: KnownJob | undefined): Promise<void> {
    const savedProjectId = job && user.projects.includes(job.savedProjectId) ? job.savedProjectId : pick(user.projects);
    const sceneKey = pick(SCENES);
    const frameNumber = between(random, 0, 47);
    const useGraphql = chance(0.4);
    // The same request while it renders or is cached answers the same snapshot: safe to repeat.
    const answer = useGraphql
      ? await persist(user, (replica) =>
          graphql(replica, 'mutation requestSnapshot', user.token, SNAPSHOT, { input: { savedProjectId, sceneKey, frameNumber } }, 'requestSnapshot'),
        )
      : await persist(user, (replica) =>
          rest(replica, 'POST', '/v1/snapshots', 'POST /v1/snapshots', {
            token: user.token,
            json: { saved_project_id: savedProjectId, scene_key: sceneKey, frame_number: frameNumber },
          }),
        );
    const id = useGraphql ? answer.body?.requestSnapshot?.id : answer.body?.snapshot_id;
    if ((answer.status === 202 || answer.status === 200) && typeof id === 'string') {
      if (!user.snapshots.includes(id)) user.snapshots.push(id);
      if (user.snapshots.length > 20) user.snapshots.shift();
      return count('snapshot ok');
    }
    unexpected('snapshot', answer);
  }

  /** The export's auto-delete date (ms), null when it is gone, undefined when it could not be read. */
  async function autoDeleteOf(user: SimUser, exportId: string, useGraphql: boolean): Promise<number | null | undefined> {
    const answer = useGraphql
      ? await persist(user, (r) => graphql(r, 'query export', user.token, EXPORT, { id: exportId }), { deadlineMs: 30_000 })
      : await persist(user, (r) => rest(r, 'GET', `/v1/exports/${exportId}`, 'GET /v1/exports/{id}', { token: user.token }), { deadlineMs: 30_000 });
    if (answer.status === 404) return null;
    if (answer.status !== 200) return undefined;
    const date = useGraphql ? answer.body?.export?.autoDeleteDate : answer.body?.auto_delete_date;
    const ms = typeof date === 'string' ? Date.parse(date) : Number.NaN;
    return Number.isFinite(ms) ? ms : undefined;
  }

  async function extend(user: SimUser, job: KnownJob): Promise<void> {
    const exportId = job.exportId as string;
    const useGraphql = chance(0.4);
    const days = between(random, 1, 30);
    // An extension charges every time it lands: a lost one is looked for in the date before it is sent again.
    const before = await autoDeleteOf(user, exportId, useGraphql);
    if (before === null) {
      job.exportDeleted = true;
      return count('extend refused');
    }
    if (before === undefined) return count('extend failed');
    const reconcile = async (): Promise<Answer | undefined> => {
      const now = await autoDeleteOf(user, exportId, useGraphql);
      return typeof now === 'number' && now > before ? { status: 200, body: { reconciled: true }, replica: user.replica } : undefined;
    };
    const answer = useGraphql
      ? await persist(user, (replica) => graphql(replica, 'mutation extendExport', user.token, EXTEND, { id: exportId, days }, 'extendExport'), { reconcile })
      : await persist(
          user,
          (replica) => rest(replica, 'POST', `/v1/exports/${exportId}/extend`, 'POST /v1/exports/{id}/extend', { token: user.token, json: { days } }),
          { reconcile },
        );
    if (answer.status === 200) {
      count('extend ok');
      if (answer.reconciled) count('extend recovered');
      return;
    }
    if (answer.status === 402) return count('extend refused');
    if (answer.status === 404) {
      job.exportDeleted = true;
      return count('extend refused');
    }
    unexpected('extend', answer);
  }

  async function deleteExport(user: SimUser, job: KnownJob): Promise<void> {
    const exportId = job.exportId as string;
    const useGraphql = chance(0.4);
    const answer = useGraphql
      ? await persist(user, (replica) => graphql(replica, 'mutation deleteExport', user.token, DELETE_EXPORT, { id: exportId }, 'deleteExport'))
      : await persist(user, (replica) => rest(replica, 'DELETE', `/v1/exports/${exportId}`, 'DELETE /v1/exports/{id}', { token: user.token }));
    if (answer.status === 204 || answer.status === 200) {
      job.exportDeleted = true;
      count('delete-export ok');
      if (answer.lost > 0) count('delete-export recovered');
      return;
    }
    if (answer.status === 404) {
      job.exportDeleted = true;
      // A lost delete that landed: its repeat finds the export gone.
      if (answer.lost > 0) {
        count('delete-export ok');
        return count('delete-export already done');
      }
      return count('delete-export refused');
    }
    unexpected('delete-export', answer);
  }

  /** The user's recent jobs; what they say is learned. */
  async function list(user: SimUser, op: Op | 'refresh', pageSize: number, forceRest = false): Promise<boolean> {
    const useGraphql = !forceRest && chance(0.4);
    const answer = useGraphql
      ? await persist(user, (replica) => graphql(replica, 'query renderJobs', user.token, JOBS, { first: pageSize }), { sticky: false })
      : await persist(user, (replica) => rest(replica, 'GET', `/v1/renders?page_size=${pageSize}`, 'GET /v1/renders', { token: user.token }), {
          sticky: false,
        });
    if (answer.status !== 200) {
      unexpected(op as Op, answer);
      return false;
    }
    const jobs: any[] = useGraphql ? (answer.body?.renderJobs?.edges ?? []).map((edge: any) => edge.node) : (answer.body?.data ?? []);
    for (const job of jobs) if (job && typeof job.id === 'string') learned(user, job);
    count(`${op} ok`);
    return true;
  }

  async function readJob(user: SimUser, job: KnownJob, op: Op | 'refresh'): Promise<void> {
    const useGraphql = op !== 'refresh' && chance(0.4);
    const answer = useGraphql
      ? await persist(user, (replica) => graphql(replica, 'query renderJob', user.token, JOB, { id: job.id }), { sticky: false })
      : await persist(user, (replica) => rest(replica, 'GET', `/v1/renders/${job.id}`, 'GET /v1/renders/{id}', { token: user.token }), { sticky: false });
    if (answer.status !== 200) return unexpected(op as Op, answer);
    learned(user, useGraphql ? answer.body?.renderJob ?? { id: job.id } : answer.body ?? { id: job.id });
    count(`${op} ok`);
  }

  async function progress(user: SimUser, job: KnownJob): Promise<void> {
    const useGraphql = chance(0.4);
    const answer = useGraphql
      ? await persist(user, (replica) => graphql(replica, 'query renderProgress', user.token, PROGRESS, { jobId: job.id }), { sticky: false })
      : await persist(user, (replica) => rest(replica, 'GET', `/v1/renders/${job.id}/progress`, 'GET /v1/renders/{id}/progress', { token: user.token }), {
          sticky: false,
        });
    if (answer.status !== 200) return unexpected('progress', answer);
    const step = useGraphql ? answer.body?.renderProgress?.step : answer.body?.step;
    learned(user, { id: job.id, step });
    count('progress ok');
  }

  async function simpleRead(user: SimUser, op: Op, send: (replica: number) => Promise<Answer>): Promise<Settled> {
    const answer = await persist(user, send, { sticky: false });
    if (answer.status === 200) count(`${op} ok`);
    else unexpected(op, answer);
    return answer;
  }

  // ---- the loop --------------------------------------------------------------------------------

  const jobsOf = (user: SimUser, where: (job: KnownJob) => boolean) => [...user.jobs.values()].filter(where);
  const exportable = (job: KnownJob) => job.step === 'Completed' && job.exportId !== null && !job.exportDeleted;

  /** The operations that apply to the user now, with what each would act on. */
  function choices(user: SimUser): { op: Op; run: () => Promise<void> }[] {
    const open = jobsOf(user, (job) => !isTerminal(job.step));
    const ended = jobsOf(user, (job) => (job.step === 'Failed' || job.step === 'Cancelled') && !job.retried);
    const exported = jobsOf(user, exportable);
    const all = [...user.jobs.values()];
    const roomForMore = unfinished() < maxInFlight;
    const out: { op: Op; run: () => Promise<void> }[] = [];
    if (roomForMore) out.push({ op: 'submit', run: () => submit(user) });
    if (open.length > 0) out.push({ op: 'cancel', run: () => cancel(user, pick(open)) });
    if (roomForMore && ended.length > 0) out.push({ op: 'retry', run: () => retry(user, pick(ended)) });
    if (user.projects.length > 0) out.push({ op: 'snapshot', run: () => snapshot(user, all.length > 0 ? pick(all) : undefined) });
    if (exported.length > 0) {
      out.push({ op: 'extend', run: () => extend(user, pick(exported)) });
      out.push({ op: 'delete-export', run: () => deleteExport(user, pick(exported)) });
    }
    out.push({ op: 'list', run: async () => void (await list(user, 'list', 20)) });
    if (all.length > 0) {
      // Mostly the jobs still moving, as a person watching them would.
      const watched = open.length > 0 && chance(0.7) ? open : all;
      out.push({ op: 'job', run: () => readJob(user, pick(watched), 'job') });
      out.push({ op: 'progress', run: () => progress(user, pick(watched)) });
    }
    out.push({
      op: 'wallet',
      run: async () => void (await simpleRead(user, 'wallet', (replica) => graphql(replica, 'query wallet', user.token, WALLET, {}))),
    });
    out.push({
      op: 'exports',
      run: async () =>
        void (await simpleRead(user, 'exports', (replica) =>
          chance(0.5)
            ? rest(replica, 'GET', '/v1/exports', 'GET /v1/exports', { token: user.token })
            : graphql(replica, 'query exports', user.token, EXPORTS, {}),
        )),
    });
    if (user.snapshots.length > 0) {
      const id = pick(user.snapshots);
      out.push({
        op: 'snapshot-read',
        run: async () =>
          void (await simpleRead(user, 'snapshot-read', (replica) =>
            chance(0.5)
              ? rest(replica, 'GET', `/v1/snapshots/${id}`, 'GET /v1/snapshots/{id}', { token: user.token })
              : graphql(replica, 'query snapshot', user.token, SNAPSHOT_READ, { id }),
          )),
      });
    }
    return out;
  }

  function launch(user: SimUser, work: () => Promise<void>): void {
    user.busy = true;
    const task = (async () => {
      try {
        await work();
      } catch (error) {
        if (!(error instanceof Stopped)) count(`error ${error instanceof Error ? error.message.slice(0, 80) : String(error)}`);
      } finally {
        user.busy = false;
      }
    })();
    running.add(task);
    void task.finally(() => running.delete(task));
  }

  function tick(): void {
    const idle = users.filter((user) => !user.busy);
    if (idle.length === 0) return count('skipped all users busy');
    const user = pick(idle);
    const options = choices(user);
    const total = options.reduce((sum, option) => sum + OPERATION_WEIGHTS[option.op], 0);
    let draw = random() * total;
    const chosen = options.find((option) => (draw -= OPERATION_WEIGHTS[option.op]) < 0) ?? (options[options.length - 1] as (typeof options)[number]);
    launch(user, chosen.run);
  }

  /** Keeps the users' view of their unfinished jobs fresh, one user a second, so the in-flight bound holds. */
  async function refresh(): Promise<void> {
    const candidates = users.filter((user) => !user.refreshing && jobsOf(user, (job) => !isTerminal(job.step)).length > 0);
    if (candidates.length === 0) return;
    const user = candidates.reduce((oldest, next) => (next.lastRefresh < oldest.lastRefresh ? next : oldest));
    user.refreshing = true;
    user.lastRefresh = Date.now();
    try {
      if (!(await list(user, 'refresh', REFRESH_PAGE, true))) return;
      // Unfinished jobs older than the page: read one by one (a few per pass).
      const page = [...user.jobs.values()].slice(-REFRESH_PAGE);
      const older = jobsOf(user, (job) => !isTerminal(job.step) && !page.includes(job)).slice(0, 5);
      for (const job of older) if (!stopping) await readJob(user, job, 'refresh');
    } finally {
      user.refreshing = false;
    }
  }

  const loops: Promise<void>[] = [];
  loops.push(
    (async () => {
      while (!stopping) {
        // Exponential gaps: `rate` operations a second on average.
        const gapMs = Math.min(10_000, (-Math.log(1 - random()) / rate) * 1000);
        await sleep(gapMs);
        if (stopping) break;
        tick();
      }
    })(),
  );
  loops.push(
    (async () => {
      while (!stopping) {
        await sleep(1000);
        if (stopping) break;
        try {
          await refresh();
        } catch (error) {
          if (!(error instanceof Stopped)) count('refresh error');
        }
      }
    })(),
  );

  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        stopping = true;
        for (const wake of [...sleeps]) wake();
        const cut = setTimeout(() => stopController.abort(), STOP_GRACE_MS);
        await Promise.all(loops);
        while (running.size > 0) await Promise.allSettled([...running]);
        clearTimeout(cut);
      })();
      return stopped;
    },
    stats: () => Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b))),
    jobs: () => [...allJobs],
    userIds: () => users.map((user) => user.id),
  };
}
