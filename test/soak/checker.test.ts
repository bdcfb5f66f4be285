// The soak's checker must see what it is there to see: each invariant is broken here on purpose,
// in recorded histories and in a real database, and a history that keeps them passes.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../../bench/lib/service.ts';
import {
  checkDatabase,
  checkLeases,
  checkLiveness,
  checkMemory,
  checkServerErrors,
  OFFLINE_GRACE_MS,
  unreachableWindows,
} from '../../soak/lib/checker.ts';
import { FAULT_KINDS, type FaultRecord, planFaults } from '../../soak/lib/faults.ts';
import { createTestDatabase } from '../support/database.ts';

const T = Date.parse('2026-12-06T12:00:00Z');
const outage: FaultRecord = { kind: 'postgres-restart', at: 0, forMs: 5_000, startedAt: T, endedAt: T + 5_000 };

describe('the soak checker on recorded histories', () => {
  it('allows 503 during a database outage and nothing else of 5xx', () => {
    const during = { door: 'agent' as const, route: 'POST /v1/nodes/:id/heartbeat', replica: 0, status: 503, at: T + 2_000 };
    expect(checkServerErrors([during], 1, [outage]).violations).toEqual([]);
    const outside = { ...during, at: T + 60_000 };
    const internal = { ...during, status: 500 };
    const redisOutage: FaultRecord = { ...outage, kind: 'redis-restart', startedAt: T + 50_000, endedAt: T + 70_000 };
    const found = checkServerErrors([outside, internal], 2, [outage, redisOutage]).violations;
    expect(found.map((violation) => violation.detail)).toEqual([expect.stringContaining('answered 503'), expect.stringContaining('answered 500')]);
  });

  it('finds a chunk whose earlier lease had a frame accepted after a later one did', () => {
    const first = { chunkId: 'c1', lease: 'a', nodeId: 'n1', firstAnsweredAt: T, lastSentAt: T + 1_000 };
    const handedOver = { chunkId: 'c1', lease: 'b', nodeId: 'n2', firstAnsweredAt: T + 2_000, lastSentAt: T + 3_000 };
    expect(checkLeases([first, handedOver])).toMatchObject({ checked: 1, violations: [] });
    const overlapping = { ...first, lastSentAt: T + 2_500 };
    expect(checkLeases([overlapping, handedOver]).violations).toEqual([
      { invariant: 'no chunk held by two live leases', detail: expect.stringContaining('chunk c1: lease a') },
    ]);
  });

  it('excuses Offline only while the agent was down, partitioned or skewed beyond the window', () => {
    const groupOf = new Map([
      ['killed', 0],
      ['partitioned', 1],
      ['skewed', 0],
      ['healthy', 0],
    ]);
    const faults: FaultRecord[] = [
      { kind: 'network-partition', at: 0, forMs: 10_000, target: 1, startedAt: T, endedAt: T + 10_000 },
      { kind: 'clock-skew-beyond', at: 0, forMs: 10_000, target: 0, nodeIds: ['skewed'], startedAt: T, endedAt: T + 10_000 },
      { kind: 'network-delay', at: 0, forMs: 10_000, target: 0, startedAt: T, endedAt: T + 10_000 },
    ];
    const moments = [
      { nodeId: 'killed', kind: 'killed' as const, at: T },
      { nodeId: 'killed', kind: 'online' as const, at: T + 20_000 },
    ];
    const windows = unreachableWindows(moments, faults, groupOf, T + 600_000);
    const excused = ['killed', 'partitioned', 'skewed'].map((nodeId) => ({ nodeId, at: T + 5_000 }));
    expect(checkLiveness(excused, windows, 1).violations).toEqual([]);
    const late = { nodeId: 'killed', at: T + 20_000 + OFFLINE_GRACE_MS + 1 };
    const delayedOnly = { nodeId: 'healthy', at: T + 5_000 };
    const found = checkLiveness([late, delayedOnly, { ...delayedOnly, at: T + 7_000 }], windows, 3).violations;
    expect(found.map((violation) => violation.detail)).toEqual([expect.stringContaining('node killed'), expect.stringContaining('node healthy')]);
  });

  it('finds RSS over the limit and RSS that keeps growing', () => {
    const flat = Array.from({ length: 20 }, (_unused, index) => ({ at: T + index * 1_000, bytes: 200 * 2 ** 20 }));
    expect(checkMemory(flat, 512 * 2 ** 20).violations).toEqual([]);
    const growing = flat.map((sample, index) => ({ ...sample, bytes: (100 + index * 20) * 2 ** 20 }));
    expect(checkMemory(growing, 2 ** 30).violations.map((violation) => violation.detail)).toEqual([expect.stringContaining('grew')]);
    expect(checkMemory(flat, 100 * 2 ** 20).violations.map((violation) => violation.detail)).toEqual([expect.stringContaining('limit 100 MiB')]);
  });
});

describe('the soak fault schedule', () => {
  const options = { durationMs: 180_000, replicas: 3, groups: 3 };

  it('is the same for the same seed, meets every kind in a short run, and has ended by the end', () => {
    const plan = planFaults({ seed: 7, ...options });
    expect(planFaults({ seed: 7, ...options })).toEqual(plan);
    expect(planFaults({ seed: 8, ...options })).not.toEqual(plan);
    expect(new Set(plan.map((fault) => fault.kind))).toEqual(new Set(FAULT_KINDS));
    for (const fault of plan) expect(fault.at + fault.forMs).toBeLessThanOrEqual(options.durationMs);
  });

  it('never has two replicas down, or one server restarted twice, at once', () => {
    const plan = planFaults({ seed: 11, ...options, durationMs: 3_600_000 });
    for (const slot of ['replica-kill', 'postgres-restart', 'redis-restart'] as const) {
      const faults = plan.filter((fault) => fault.kind === slot);
      for (let index = 1; index < faults.length; index++) {
        const before = faults[index - 1]!;
        expect(faults[index]!.at).toBeGreaterThanOrEqual(before.at + before.forMs);
      }
    }
  });
});

describe('the soak checker on the database', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it('passes a consistent farm and finds a lost frame, a stuck job, an event after the end, a wallet off its ledger and a double refund', async () => {
    const user = randomUUID();
    const check = () => withClient(database.url, (client) => checkDatabase(client));
    await withClient(database.url, async (client) => {
      const job = async (step: string, frames: number, rendered: number, paid = 0, refunded = 0) => {
        const id = randomUUID();
        await client.query(
          `INSERT INTO render_jobs (id, user_id, saved_project_id, name, step, price_type, quality, resolution, frame_rate, duration_sec, total_frames, frames_rendered, paid_price_minor, refunded_minor, updated_at)
           VALUES ($1, $2, $3, 'soak', $4, 'Cash', 'Low', 'HD', 1, $5::int, $5::int, $6, $7, $8, now())`,
          [id, user, randomUUID(), step, frames, rendered, paid, refunded],
        );
        const chunk = randomUUID();
        await client.query(
          `INSERT INTO frame_jobs (id, render_job_id, start_frame, end_frame, order_value, status, frames_rendered, updated_at) VALUES ($1, $2, 0, $3, 0, $4, $5, now())`,
          [chunk, id, frames - 1, step === 'Completed' ? 'Completed' : 'Pending', rendered],
        );
        await client.query(`INSERT INTO frames (render_job_id, frame_number, frame_job_id, rendered) SELECT $1, n, $2, n < $3 FROM generate_series(0, $4 - 1) n`, [id, chunk, rendered, frames]);
        return id;
      };
      const entry = (kind: string, amount: number, key: string, jobId?: string) =>
        client.query(`INSERT INTO ledger_entries (id, user_id, kind, amount_minor, balance_after_minor, idempotency_key, render_job_id) VALUES ($1, $2, $3, $4, 0, $5, $6)`, [
          randomUUID(),
          user,
          kind,
          amount,
          key,
          jobId ?? null,
        ]);
      await client.query(`INSERT INTO wallets (user_id, balance_minor, updated_at) VALUES ($1, 60, now())`, [user]);
      await entry('Credit', 100, 'credit');
      await job('Completed', 4, 4);
      const cancelled = await job('Cancelled', 4, 0, 40, 40);
      await entry('Charge', -40, 'charge', cancelled);
      await entry('Refund', 40, `refund:render-job:${cancelled}`, cancelled);
      await client.query(`INSERT INTO render_job_events (render_job_id, seq, payload) VALUES ($1, 1, '{"progress": {"step": "Cancelled"}}')`, [cancelled]);
      await client.query(`UPDATE wallets SET balance_minor = 100 WHERE user_id = $1`, [user]);
    });
    const clean = await check();
    expect(clean.flatMap((result) => result.violations)).toEqual([]);
    expect(clean.map((result) => result.checked)).toEqual([2, 1, 1, 1, 1]);

    await withClient(database.url, async (client) => {
      // A frame of the Completed job lost its record; another job never ended; the wallet drifts;
      // the cancel is refunded twice and has an event after its terminal one.
      const completed = await client.query<{ id: string }>(`SELECT id::text FROM render_jobs WHERE step = 'Completed'`);
      await client.query(`UPDATE frames SET rendered = false WHERE render_job_id = $1 AND frame_number = 0`, [completed.rows[0]!.id]);
      await client.query(
        `INSERT INTO render_jobs (id, user_id, saved_project_id, name, step, price_type, quality, resolution, frame_rate, duration_sec, total_frames, updated_at) VALUES ($1, $2, $3, 'stuck', 'Rendering', 'Free', 'Low', 'HD', 1, 1, 1, now())`,
        [randomUUID(), user, randomUUID()],
      );
      const cancelled = await client.query<{ id: string }>(`SELECT id::text FROM render_jobs WHERE step = 'Cancelled'`);
      await client.query(`INSERT INTO render_job_events (render_job_id, seq, payload) VALUES ($1, 2, '{"progress": {"step": "Cancelled", "framesRendered": 1}}')`, [cancelled.rows[0]!.id]);
      await client.query(`INSERT INTO ledger_entries (id, user_id, kind, amount_minor, balance_after_minor, idempotency_key, render_job_id) VALUES ($1, $2, 'Refund', 40, 140, 'again', $3)`, [
        randomUUID(),
        user,
        cancelled.rows[0]!.id,
      ]);
    });
    const broken = await check();
    expect(broken.map((result) => [result.invariant, result.violations.length])).toEqual([
      ['every job in a terminal step', 1],
      ["no event after a job's terminal one", 1],
      ['every frame of every Completed job accepted exactly once', 1],
      ["every wallet's balance equals its ledger", 1],
      ['every cancel and failure refunded exactly once', 1],
    ]);
  });
});
