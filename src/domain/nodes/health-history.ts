// Node health history and the rule that keeps it small.
//
// Every heartbeat stores a raw sample (bucketSeconds 0). As samples age they are folded into
// coarser buckets, then dropped:
//   - raw samples are kept for 1 hour;
//   - then folded into 1-minute buckets, kept for 24 hours;
//   - then folded into 1-hour buckets, kept for 30 days;
//   - then deleted.
// A bucket's recordedAt is its start (aligned to UTC minutes or hours). It holds the averages
// of cpu, free RAM and After Effects' memory over its samples, weighted by the time each sample
// stands for (a raw sample one heartbeat interval, a bucket its length), the last status, job,
// frame and cache size, and whether After Effects ran at any moment. After Effects' memory is
// averaged over the samples that report it, and stays null when none does. A node heartbeating
// every 5 s thus keeps at most about 720 raw samples, 1,440 minute buckets and 720 hour buckets.
//
// A sample that arrives after its minute (or hour) was folded is merged into that bucket, so a
// node never has two buckets of one size for the same period, and a range query answers each
// moment once, at whatever resolution is kept for it.
//
// downsampleHealth runs in one transaction under an advisory lock; a replica that does not get
// the lock skips the pass, so several replicas never fold the same samples twice.
import { type NodeStatus, Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import { tryLock } from '../locks.ts';
import { DEFAULT_HEARTBEAT_INTERVAL_SECONDS } from './node-status.ts';

export const RAW_RETENTION_SECONDS = 3600;
export const MINUTE_BUCKET_SECONDS = 60;
export const MINUTE_RETENTION_SECONDS = 24 * 3600;
export const HOUR_BUCKET_SECONDS = 3600;
export const HOUR_RETENTION_SECONDS = 30 * 24 * 3600;

const BUCKET_SIZES = [0, MINUTE_BUCKET_SECONDS, HOUR_BUCKET_SECONDS] as const;

export interface NodeHealth {
  nodeId: string;
  /** When the health was recorded; null for a node that never sent a heartbeat. */
  recordedAt: Date | null;
  status: NodeStatus;
  cpuPct: number;
  ramAvailableMb: number;
  aeRunning: boolean;
  /** Null when the agent does not report it. */
  aeMemoryMb: number | null;
  currentJobId: string | null;
  currentFrame: number | null;
  cacheUsedGb: number;
}

export interface HealthSample extends NodeHealth {
  recordedAt: Date;
  /** 0 for a raw sample, else the length of the bucket that starts at recordedAt. */
  bucketSeconds: number;
}

export interface DownsampleResult {
  /** True when another replica held the lock and this pass did nothing. */
  skipped: boolean;
  foldedIntoMinutes: number;
  foldedIntoHours: number;
  deleted: number;
}

const floorTo = (date: Date, seconds: number) => new Date(Math.floor(date.getTime() / (seconds * 1000)) * seconds * 1000);
const secondsBefore = (date: Date, seconds: number) => new Date(date.getTime() - seconds * 1000);

/** Samples of one node that cover [from, to], oldest first: raw ones and buckets overlapping the range. */
export async function healthHistory(prisma: PrismaClient, nodeId: string, from: Date, to: Date): Promise<HealthSample[]> {
  const samples = await prisma.nodeHealthSample.findMany({
    where: {
      nodeId,
      recordedAt: { lte: to },
      OR: BUCKET_SIZES.map((bucketSeconds) =>
        bucketSeconds === 0
          ? { bucketSeconds, recordedAt: { gte: from } }
          : { bucketSeconds, recordedAt: { gt: secondsBefore(from, bucketSeconds) } },
      ),
    },
    orderBy: [{ recordedAt: 'asc' }, { id: 'asc' }],
  });
  return samples.map(({ id: _id, ...sample }) => sample);
}

/** A figure's average over the samples that report it, each weighted by the time it stands for; null when none does. */
const weightedAverage = (column: string) =>
  Prisma.raw(`round(sum(${column} * weight) / sum(weight) FILTER (WHERE ${column} IS NOT NULL))::int`);

/**
 * Folds samples of size `from` recorded before `before` into buckets of `to` seconds, merging
 * them with buckets already there, in one statement.
 */
async function fold(tx: Tx, from: number, to: number, before: Date): Promise<number> {
  const [row] = await tx.$queryRaw<{ folded: bigint }[]>`
    WITH source AS (
      DELETE FROM node_health_samples
      WHERE bucket_seconds = ${from}::int AND recorded_at < ${before}
      RETURNING *
    ), touched AS (
      SELECT DISTINCT node_id, date_bin(${to}::int * interval '1 second', recorded_at, TIMESTAMPTZ 'epoch') AS bucket_start
      FROM source
    ), merged AS (
      DELETE FROM node_health_samples s
      USING touched t
      WHERE s.bucket_seconds = ${to}::int AND s.node_id = t.node_id AND s.recorded_at = t.bucket_start
      RETURNING s.*
    ), weighted AS (
      SELECT *,
        (CASE WHEN bucket_seconds = 0 THEN ${DEFAULT_HEARTBEAT_INTERVAL_SECONDS}::int ELSE bucket_seconds END)::numeric AS weight,
        recorded_at + bucket_seconds * interval '1 second' AS ends_at
      FROM (SELECT * FROM source UNION ALL SELECT * FROM merged) everything
    ), inserted AS (
      INSERT INTO node_health_samples
        (node_id, recorded_at, bucket_seconds, status, cpu_pct, ram_available_mb, ae_running, ae_memory_mb, current_job_id, current_frame, cache_used_gb)
      SELECT
        node_id,
        date_bin(${to}::int * interval '1 second', recorded_at, TIMESTAMPTZ 'epoch') AS bucket_start,
        ${to}::int,
        (array_agg(status ORDER BY ends_at DESC))[1],
        ${weightedAverage('cpu_pct')},
        ${weightedAverage('ram_available_mb')},
        bool_or(ae_running),
        ${weightedAverage('ae_memory_mb')},
        (array_agg(current_job_id ORDER BY ends_at DESC))[1],
        (array_agg(current_frame ORDER BY ends_at DESC))[1],
        (array_agg(cache_used_gb ORDER BY ends_at DESC))[1]
      FROM weighted
      GROUP BY node_id, bucket_start
    )
    SELECT count(*) AS folded FROM source`;
  return Number(row?.folded ?? 0);
}

/** One pass of the retention rule at `now`. */
export async function downsampleHealth(prisma: PrismaClient, now: Date): Promise<DownsampleResult> {
  return prisma.$transaction(async (tx) => {
    if (!(await tryLock(tx, 'healthDownsampling'))) return { skipped: true, foldedIntoMinutes: 0, foldedIntoHours: 0, deleted: 0 };
    // Cut-offs fall on bucket boundaries, so a bucket is only ever made from a whole period.
    const foldedIntoMinutes = await fold(
      tx,
      0,
      MINUTE_BUCKET_SECONDS,
      floorTo(secondsBefore(now, RAW_RETENTION_SECONDS), MINUTE_BUCKET_SECONDS),
    );
    const foldedIntoHours = await fold(
      tx,
      MINUTE_BUCKET_SECONDS,
      HOUR_BUCKET_SECONDS,
      floorTo(secondsBefore(now, MINUTE_RETENTION_SECONDS), HOUR_BUCKET_SECONDS),
    );
    const { count: deleted } = await tx.nodeHealthSample.deleteMany({
      where: { recordedAt: { lt: secondsBefore(now, HOUR_RETENTION_SECONDS) } },
    });
    return { skipped: false, foldedIntoMinutes, foldedIntoHours, deleted };
  });
}
