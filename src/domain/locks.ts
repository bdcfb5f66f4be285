// The PostgreSQL advisory locks the service takes, each with its id here so that no two uses
// share one by accident. All are transaction-level: released at commit or rollback, never left
// behind by a replica that died. (The migrator's session lock is Prisma's own key, kept with it.)
import type { Tx } from './db.ts';

export const ADVISORY_LOCKS = {
  /** One scheduling pass at a time across replicas; the others skip theirs. */
  schedulingPass: 7_270_001,
  /** One heartbeat sweep at a time. */
  heartbeatSweep: 7_270_002,
  /** One stall sweep at a time. */
  stallSweep: 7_270_003,
  /** One health downsampling pass at a time. */
  healthDownsampling: 7_270_101,
  /** Rollouts start one at a time, so "already rolling out" holds until the new one is written. */
  rolloutStart: 7_270_102,
} as const;

export type AdvisoryLock = keyof typeof ADVISORY_LOCKS;

/** The two-integer lock space of snapshot renders, one lock per render key: apart from the ids above. */
const SNAPSHOT_RENDER_SPACE = 7_270_010;

/** Takes the lock if no other transaction holds it; answers whether it did. For passes that skip when another replica runs. */
export async function tryLock(tx: Tx, lock: AdvisoryLock): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCKS[lock]}::bigint) AS locked`;
  return row?.locked === true;
}

/** Waits for the lock: for changes that must take turns. */
export async function lock(tx: Tx, lock: AdvisoryLock): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADVISORY_LOCKS[lock]}::bigint)`;
}

/** Waits for the lock of one snapshot render, named by its key's text; renders whose hashes collide only wait for each other. */
export async function lockSnapshotRender(tx: Tx, keyText: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SNAPSHOT_RENDER_SPACE}::int, hashtext(${keyText}))`;
}
