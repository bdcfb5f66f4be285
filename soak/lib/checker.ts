// The soak's invariants, checked over what its callers recorded and over the database at the end.
// Each check answers how many things it looked at and every violation it found, so a report of
// "0 violations" also says of how many.
import type pg from 'pg';
import { TERMINAL_STEPS } from '../../src/domain/jobs/state-machine.ts';
import type { LeaseSpan, NodeMoment } from './fleet-child.ts';
import type { FaultRecord } from './faults.ts';
import type { RequestOutcome, Violation } from './history.ts';

export interface Check {
  invariant: string;
  checked: number;
  violations: Violation[];
}

/** After a PostgreSQL restart, the replicas' pools find their connections gone: 503s may follow by this much. */
export const DATABASE_RECOVERY_GRACE_MS = 15_000;
/**
 * How long after an agent stops being reachable (or becomes reachable again) its node may show as
 * Offline: the heartbeat timeout (15 s), the sweep's period and the monitor's own.
 */
export const OFFLINE_GRACE_MS = 25_000;

const MAX_LISTED = 20;

function check(invariant: string, checked: number, problems: string[]): Check {
  const violations = problems.slice(0, MAX_LISTED).map((detail) => ({ invariant, detail }));
  if (problems.length > MAX_LISTED) violations.push({ invariant, detail: `... and ${problems.length - MAX_LISTED} more` });
  return { invariant, checked, violations };
}

/** Every answer 500 or above was a 503 during a PostgreSQL restart (or just after it). */
export function checkServerErrors(errors: readonly RequestOutcome[], total: number, faults: readonly FaultRecord[]): Check {
  const outages = faults
    .filter((fault) => fault.kind === 'postgres-restart')
    .map((fault) => [fault.startedAt, (fault.endedAt ?? Number.POSITIVE_INFINITY) + DATABASE_RECOVERY_GRACE_MS] as const);
  const problems = errors
    .filter((error) => !(error.status === 503 && outages.some(([from, to]) => error.at >= from && error.at <= to)))
    .map((error) => `${error.door} ${error.route} answered ${error.status} by replica ${error.replica} at ${new Date(error.at).toISOString()}`);
  return check('no 5xx but 503 during a database outage', total, problems);
}

/**
 * No chunk was held by two live leases: a report under an earlier lease was never sent after a
 * report under a later one had been accepted (the service commits a report between its sending
 * and its answer, so this is the overlap that is certain).
 */
export function checkLeases(spans: readonly LeaseSpan[]): Check {
  const byChunk = new Map<string, LeaseSpan[]>();
  for (const span of spans) {
    const list = byChunk.get(span.chunkId) ?? [];
    list.push(span);
    byChunk.set(span.chunkId, list);
  }
  const problems: string[] = [];
  for (const [chunkId, list] of byChunk) {
    list.sort((a, b) => a.firstAnsweredAt - b.firstAnsweredAt);
    for (let index = 1; index < list.length; index++) {
      const later = list[index] as LeaseSpan;
      for (const earlier of list.slice(0, index)) {
        if (earlier.lastSentAt > later.firstAnsweredAt) {
          problems.push(
            `chunk ${chunkId}: lease ${earlier.lease} (node ${earlier.nodeId}) had a frame accepted that was sent ${earlier.lastSentAt - later.firstAnsweredAt} ms after lease ${later.lease} (node ${later.nodeId}) had one accepted`,
          );
        }
      }
    }
  }
  return check('no chunk held by two live leases', byChunk.size, problems);
}

/** When a node's agent was not running or not reachable, widened by OFFLINE_GRACE_MS at the end. */
export function unreachableWindows(
  moments: readonly NodeMoment[],
  faults: readonly FaultRecord[],
  groupOf: ReadonlyMap<string, number>,
  endOfRun: number,
): Map<string, Array<[number, number]>> {
  const windows = new Map<string, Array<[number, number]>>();
  const add = (nodeId: string, from: number, to: number) => {
    const list = windows.get(nodeId) ?? [];
    list.push([from, to + OFFLINE_GRACE_MS]);
    windows.set(nodeId, list);
  };
  const downSince = new Map<string, number>();
  for (const moment of [...moments].sort((a, b) => a.at - b.at)) {
    if (moment.kind === 'killed' || moment.kind === 'restarting') {
      if (!downSince.has(moment.nodeId)) downSince.set(moment.nodeId, moment.at);
    } else if (moment.kind === 'online') {
      const since = downSince.get(moment.nodeId);
      if (since !== undefined) add(moment.nodeId, since, moment.at);
      downSince.delete(moment.nodeId);
    }
  }
  for (const [nodeId, since] of downSince) add(nodeId, since, endOfRun);
  for (const fault of faults) {
    const to = fault.endedAt ?? endOfRun;
    if (fault.kind === 'clock-skew-beyond') for (const nodeId of fault.nodeIds ?? []) add(nodeId, fault.startedAt, to);
    if (fault.kind === 'network-partition') {
      for (const [nodeId, group] of groupOf) if (group === fault.target) add(nodeId, fault.startedAt, to);
    }
  }
  return windows;
}

/** No node was seen Offline while its agent was running and reachable. */
export function checkLiveness(sightings: ReadonlyArray<{ nodeId: string; at: number }>, windows: ReadonlyMap<string, Array<[number, number]>>, looks: number): Check {
  // One line per node, its first wrong sighting: a node wrongly Offline is seen so on every look until it comes back.
  const firstPerNode = new Map<string, number>();
  for (const { nodeId, at } of sightings) {
    const excused = (windows.get(nodeId) ?? []).some(([from, to]) => at >= from && at <= to);
    if (!excused && !firstPerNode.has(nodeId)) firstPerNode.set(nodeId, at);
  }
  const problems = [...firstPerNode].map(([nodeId, at]) => `node ${nodeId} was Offline at ${new Date(at).toISOString()} while its agent ran and was reachable`);
  return check('no node Offline while its agent was running and reachable', looks, problems);
}

/** Every replica's RSS stayed under the limit, and did not keep growing: the last fifth of the run's samples against the second fifth. */
export function checkMemory(samples: ReadonlyArray<{ at: number; bytes: number }>, limitBytes: number): Check {
  const problems: string[] = [];
  for (const sample of samples) {
    if (sample.bytes > limitBytes) {
      problems.push(`a replica's RSS reached ${(sample.bytes / 2 ** 20).toFixed(0)} MiB at ${new Date(sample.at).toISOString()} (limit ${(limitBytes / 2 ** 20).toFixed(0)} MiB)`);
      break;
    }
  }
  const growth = memoryGrowth(samples);
  if (growth !== undefined && growth > 1.5) problems.push(`the replicas' median RSS grew ${growth.toFixed(2)}x from the second fifth of the run to the last`);
  return check('the service RSS stays bounded', samples.length, problems);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/** The median RSS of the last fifth of the samples over that of the second fifth (after warm-up). */
export function memoryGrowth(samples: ReadonlyArray<{ at: number; bytes: number }>): number | undefined {
  if (samples.length < 10) return undefined;
  const sorted = [...samples].sort((a, b) => a.at - b.at);
  const fifth = Math.floor(sorted.length / 5);
  const second = median(sorted.slice(fifth, 2 * fifth).map((sample) => sample.bytes));
  const last = median(sorted.slice(-fifth).map((sample) => sample.bytes));
  return second > 0 ? last / second : undefined;
}

/** The checks made on the database once the farm has drained. */
export async function checkDatabase(client: pg.Client): Promise<Check[]> {
  const jobs = await client.query<{ id: string; step: string }>(`SELECT id::text, step::text FROM render_jobs ORDER BY id`);
  // An unfinished job is told with what it waits for: its latest log line and its open commands.
  const unfinished = await client.query<{ id: string; step: string; updated: Date; log: string | null; commands: string | null }>(
    `SELECT j.id::text, j.step::text, j.updated_at AS updated,
       (SELECT l.message FROM job_logs l WHERE l.render_job_id = j.id ORDER BY l.id DESC LIMIT 1) AS log,
       (SELECT string_agg(c.type || ' ' || c.status || ' on ' || c.node_id || ' (delivered ' || c.delivery_count || 'x)', '; ')
          FROM node_commands c WHERE c.render_job_id = j.id AND c.status IN ('Pending', 'Acknowledged')) AS commands
     FROM render_jobs j WHERE j.step::text <> ALL($1) ORDER BY j.id`,
    [TERMINAL_STEPS],
  );
  const unfinishedProblems = unfinished.rows.map(
    (job) => `job ${job.id} is still ${job.step} (last change ${job.updated.toISOString()}; last log line: ${job.log ?? 'none'}; open commands: ${job.commands ?? 'none'})`,
  );

  const afterEnd = await client.query<{ id: string; seq: number; terminal: number; payload: { progress?: Record<string, unknown> } }>(`
    WITH ends AS (
      SELECT render_job_id, min(seq) AS seq FROM render_job_events
      WHERE payload->'progress'->>'step' IN ('Completed', 'Failed', 'Cancelled') GROUP BY render_job_id
    )
    SELECT e.render_job_id::text AS id, e.seq, ends.seq AS terminal, e.payload
    FROM render_job_events e JOIN ends ON ends.render_job_id = e.render_job_id AND e.seq > ends.seq
    ORDER BY e.render_job_id, e.seq`);
  const ends = await client.query<{ count: string }>(
    `SELECT count(DISTINCT render_job_id) AS count FROM render_job_events WHERE payload->'progress'->>'step' IN ('Completed', 'Failed', 'Cancelled')`,
  );
  const afterEndProblems = afterEnd.rows.map(({ id, seq, terminal, payload }) => {
    const { step, framesRendered, activeNodes, message } = payload.progress ?? {};
    return `job ${id}: event ${seq} after its terminal event ${terminal} (step ${step}, ${framesRendered} frames, ${activeNodes} active nodes, message: ${message})`;
  });

  const frames = await client.query<{ id: string; total_frames: number; frames_rendered: number; rows: string; rendered: string; chunk_sum: string }>(`
    SELECT j.id::text, j.total_frames, j.frames_rendered,
      (SELECT count(*) FROM frames f WHERE f.render_job_id = j.id) AS rows,
      (SELECT count(*) FROM frames f WHERE f.render_job_id = j.id AND f.rendered) AS rendered,
      -- Every chunk, failed attempts too: a frame is counted on the chunk that rendered it, once.
      (SELECT coalesce(sum(c.frames_rendered), 0) FROM frame_jobs c WHERE c.render_job_id = j.id) AS chunk_sum
    FROM render_jobs j WHERE j.step = 'Completed'`);
  const frameProblems = frames.rows
    .filter((job) => Number(job.rows) !== job.total_frames || Number(job.rendered) !== job.total_frames || job.frames_rendered !== job.total_frames || Number(job.chunk_sum) !== job.total_frames)
    .map((job) => `job ${job.id}: ${job.total_frames} frames, ${job.rows} frame rows of which ${job.rendered} rendered, counted ${job.frames_rendered} on the job and ${job.chunk_sum} on its chunks`);

  // Entries carry their sign: charges are negative.
  const wallets = await client.query<{ user_id: string; balance: string; ledger: string }>(`
    SELECT w.user_id::text, w.balance_minor AS balance,
      (SELECT coalesce(sum(e.amount_minor), 0) FROM ledger_entries e WHERE e.user_id = w.user_id) AS ledger
    FROM wallets w`);
  const walletProblems = wallets.rows
    .filter((wallet) => wallet.balance !== wallet.ledger)
    .map((wallet) => `wallet of ${wallet.user_id}: balance ${wallet.balance}, ledger sums to ${wallet.ledger}`);

  const refunds = await client.query<{ id: string; step: string; refunded: string; entries: string; total: string }>(`
    SELECT j.id::text, j.step::text, j.refunded_minor AS refunded,
      count(e.id) AS entries, coalesce(sum(e.amount_minor), 0) AS total
    FROM render_jobs j LEFT JOIN ledger_entries e ON e.render_job_id = j.id AND e.kind = 'Refund'
    GROUP BY j.id`);
  const ended = refunds.rows.filter((job) => job.step === 'Cancelled' || job.step === 'Failed');
  const refundProblems = refunds.rows
    .filter((job) => {
      const endedBeforeCompleting = job.step === 'Cancelled' || job.step === 'Failed';
      const expectedEntries = endedBeforeCompleting && BigInt(job.refunded) > 0n ? 1 : 0;
      return Number(job.entries) !== expectedEntries || BigInt(job.total) !== (endedBeforeCompleting ? BigInt(job.refunded) : 0n);
    })
    .map((job) => `job ${job.id} (${job.step}): refunded_minor ${job.refunded}, ${job.entries} refund entries summing to ${job.total}`);

  return [
    check('every job in a terminal step', jobs.rows.length, unfinishedProblems),
    check("no event after a job's terminal one", Number(ends.rows[0]?.count ?? 0), afterEndProblems),
    check('every frame of every Completed job accepted exactly once', frames.rows.length, frameProblems),
    check("every wallet's balance equals its ledger", wallets.rows.length, walletProblems),
    check('every cancel and failure refunded exactly once', ended.length, refundProblems),
  ];
}

/** The jobs as they ended, for the subscribers' audit. */
export async function finalJobs(client: pg.Client): Promise<Map<string, { lastSeq: number; step: string }>> {
  const rows = await client.query<{ id: string; event_seq: number; step: string }>(`SELECT id::text, event_seq, step::text FROM render_jobs`);
  return new Map(rows.rows.map((row) => [row.id, { lastSeq: row.event_seq, step: row.step }]));
}
