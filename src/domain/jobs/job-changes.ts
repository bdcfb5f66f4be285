// Every change to render jobs is one unit of work: a transaction that moves jobs along their
// steps and changes their frames, chunks and logs; the numbered events of every job it touched,
// recorded in that transaction (job-events.ts); then, once committed, those events published and
// the notification service told of the jobs that finished and asked to be told. Nothing else
// moves a job, so no path that ends a job can forget to publish it or to tell its owner.
//
// Row locks are taken in one order by every change: the jobs first, all at once and by id
// (JobChanges.lock), then nodes by id. A change of several jobs that locked them as it met them
// could hold one job while waiting for another that a frame batch holds while waiting for the
// first; PostgreSQL would abort one of the two after its deadlock timeout. So a change that
// alters several jobs must have locked them all first, and one that does not is refused.
import { JobStep, Prisma, type PrismaClient, type RenderJob } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import { type Sql, type SqlTransaction, sqlOf, type Tx } from '../db.ts';
import { NotFoundError } from '../errors.ts';
import { type JobEvent, publishJobEvents, type RenderFinishedNotification, topics } from '../events.ts';
import { recordJobEvents } from './job-events.ts';
import { writeJobLog } from './job-log.ts';
import { invalidMove, type Move, movedAt, stepsBefore } from './state-machine.ts';

/** What every unit of work hands its caller, whichever way its transaction runs. */
export interface SqlChanges {
  /** Runs a statement in the unit's transaction. */
  readonly sql: Sql;
  /** The moment of the whole change: moves, log lines and events share it. */
  readonly now: Date;
  /** Jobs this change altered without moving them (frames, chunks, preview), whose progress moved. */
  touch(jobIds: Iterable<string>, options?: { preview?: boolean }): void;
  /**
   * Locks the jobs' rows until commit, in id order, before the change writes anything of theirs.
   * Jobs already locked are skipped; locking a job that sorts before one already locked throws,
   * since that is the order two changes deadlock on.
   */
  lock(jobIds: Iterable<string>): Promise<void>;
}

/** A unit of work on Prisma's transaction: the models, and the only way to move a job. */
export interface JobChanges extends SqlChanges {
  readonly tx: Tx;
  /**
   * Moves the job if its current step allows it, writes the log line and returns the updated
   * row. Throws InvalidStateError (409) otherwise, naming the step the job is in.
   */
  move(jobId: string, move: Move): Promise<RenderJob>;
}

export interface JobChangeDeps {
  prisma: PrismaClient;
  /** Where the committed events go; publishing is all a unit of work does with the bus. */
  bus: Pick<EventBus, 'publish'>;
  clock: Clock;
}

export interface ChangeOptions {
  /** Transaction timeouts, for changes that write many rows or answer many callers. */
  timeout?: number;
  maxWait?: number;
}

export type ChangeJobs = <T>(work: (changes: JobChanges) => Promise<T>, options?: ChangeOptions) => Promise<T>;
export type ChangeJobsInSql = <T>(work: (changes: SqlChanges) => Promise<T>, options?: ChangeOptions) => Promise<T>;

/** What a job that reached Completed or Failed tells the notification service, when its owner asked. */
function finishedNotification(job: RenderJob): RenderFinishedNotification | null {
  if (!job.tellMeWhenDone || (job.step !== JobStep.Completed && job.step !== JobStep.Failed)) return null;
  return { type: 'render.finished', user_id: job.userId, job_id: job.id, outcome: job.step, message: job.failedMessage };
}

/** The touches, locks and events of one unit of work, on whichever transaction runs it. */
function changeSet(sql: Sql, now: Date) {
  const touched = new Set<string>();
  const previewed = new Set<string>();
  const locked = new Set<string>();
  // UUIDs compare in PostgreSQL as their lower-case text does.
  let highestLocked = '';
  const changes: SqlChanges = {
    sql,
    now,
    touch(jobIds, { preview = false } = {}) {
      for (const jobId of jobIds) {
        touched.add(jobId);
        if (preview) previewed.add(jobId);
      }
    },
    async lock(jobIds) {
      const wanted = [...new Set([...jobIds].map((id) => id.toLowerCase()))].filter((id) => !locked.has(id)).sort();
      const first = wanted[0];
      if (first === undefined) return;
      if (first < highestLocked) throw new Error(`Render job ${first} would be locked after ${highestLocked}: a change locks its jobs at once, in id order`);
      await sql(Prisma.sql`SELECT id FROM render_jobs WHERE id = ANY(${wanted}::uuid[]) ORDER BY id FOR UPDATE`, 'lock-render-jobs');
      for (const id of wanted) locked.add(id);
      highestLocked = wanted.at(-1) as string;
    },
  };
  return {
    changes,
    /** Before commit: refuses a change of several jobs that did not lock them all, then records their events. */
    async close(): Promise<JobEvent[]> {
      const unlocked = [...touched].filter((id) => !locked.has(id.toLowerCase()));
      if (touched.size > 1 && unlocked.length > 0) {
        throw new Error(`A change of ${touched.size} render jobs did not lock ${unlocked.join(', ')} first (JobChanges.lock)`);
      }
      return recordJobEvents(sql, touched, now, { withPreview: previewed });
    },
  };
}

/** After commit: the events published, the notifications sent. */
async function announce(bus: Pick<EventBus, 'publish'>, events: JobEvent[], notifications: RenderFinishedNotification[]): Promise<void> {
  await publishJobEvents(bus, events);
  await Promise.all(notifications.map((notification) => bus.publish(topics.notifications, notification)));
}

export function jobChanges({ prisma, bus, clock }: JobChangeDeps): ChangeJobs {
  return async (work, options) => {
    const { result, events, notifications } = await prisma.$transaction(async (tx) => {
      const set = changeSet(sqlOf(tx), clock.now());
      const { now, touch } = set.changes;
      // A step is reached once (the state machine has no way back), so each is told once.
      const notifications: RenderFinishedNotification[] = [];
      const changes: JobChanges = {
        ...set.changes,
        tx,
        async move(jobId, move) {
          const { count } = await tx.renderJob.updateMany({
            where: { id: jobId, step: { in: stepsBefore(move.to) } },
            data: { ...movedAt(move.to, now), ...move.data, step: move.to },
          });
          if (count === 0) {
            const current = await tx.renderJob.findUnique({ where: { id: jobId }, select: { step: true } });
            if (!current) throw new NotFoundError('render job', jobId);
            throw invalidMove(jobId, current.step, move.to);
          }
          await writeJobLog(tx, jobId, move.log);
          touch([jobId]);
          const moved = await tx.renderJob.findUniqueOrThrow({ where: { id: jobId } });
          const notification = finishedNotification(moved);
          if (notification) notifications.push(notification);
          return moved;
        },
      };
      const result = await work(changes);
      return { result, events: await set.close(), notifications };
    }, options);
    await announce(bus, events, notifications);
    return result;
  };
}

/**
 * Units of work that touch jobs without moving them, on a transaction of the database driver
 * rather than Prisma's: the frame batches, which the whole fleet's reports pass through and which
 * need only statements. Everything else about them (locks, events, publishing) is as above.
 */
export function jobChangesInSql({ transaction, bus, clock }: { transaction: SqlTransaction; bus: Pick<EventBus, 'publish'>; clock: Clock }): ChangeJobsInSql {
  return async (work, options) => {
    const { result, events } = await transaction(async (sql) => {
      const set = changeSet(sql, clock.now());
      const result = await work(set.changes);
      return { result, events: await set.close() };
    }, options);
    await announce(bus, events, []);
    return result;
  };
}
