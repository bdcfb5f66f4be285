// A job's progress events, complete and in order whichever replica made each change:
// - recordJobEvents numbers the change in its own transaction (render_jobs.event_seq, so two
//   changes of one job never share a seq and a committed seq N means 1..N-1 are committed) and
//   keeps the progress values at commit in render_job_events;
// - the caller publishes the events after commit (publishJobEvents), so subscribers never re-read;
// - followProgress hands a subscriber the events in seq order: arrivals from several replicas are
//   put back in order, a gap the bus does not fill within GAP_GRACE_MS is read from the table,
//   and so is everything after the bus reconnects. The subscribers of one job on a replica share
//   that work in the job's feed, so that each costs one small object while it waits;
// - an event committed and never published (its replica died between the two, or lost Redis)
//   leaves no gap for a later event to show when it was the job's last: the tail watch compares
//   each followed job's latest seq with what its feed has handed out, and a feed behind on two
//   checks in a row reads the rest from the table. So every event reaches every subscriber within
//   about two TAIL_CHECK_MS, whatever happened to the replica that made it.
import { type JobStep, Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { EventBus } from '../../ports.ts';
import { type Sql, sqlOf, type Tx } from '../db.ts';
import { type JobEvent, PushQueue } from '../events.ts';
import { progressOf, rateWindowStart, type RenderProgress } from './progress.ts';
import { TERMINAL_STEPS } from './state-machine.ts';

/** How long an out-of-order event waits for the ones before it before they are read from the table. */
export const GAP_GRACE_MS = 200;
/** How often a replica compares the jobs its subscribers follow with their latest seq. */
export const TAIL_CHECK_MS = 1_000;
/** Events are kept this long: long enough for any gap or reconnect, not an audit log. */
export const EVENT_RETENTION_HOURS = 24;
const PAGE = 500;

/** A RenderProgress with the seq of the event it shows. */
export type SequencedProgress = RenderProgress & { seq: number };

interface ProgressRow {
  id: string;
  userId: string;
  seq: number;
  step: JobStep;
  totalFrames: number;
  framesRendered: number;
  recentFrames: number;
  renderingSince: Date | null;
  imagePreviewB64: string | null;
  activeNodes: number;
  message: string | null;
}

// Everything progressOf needs at `now`, read in one statement; `j` is the render_jobs row.
const progressColumns = (now: Date) => Prisma.sql`
  j.id, j.user_id AS "userId", j.event_seq AS seq, j.step::text AS step, j.total_frames AS "totalFrames",
  j.frames_rendered AS "framesRendered", j.image_preview_b64 AS "imagePreviewB64",
  (SELECT count(*)::int FROM frames f
    WHERE f.render_job_id = j.id AND f.completed_at > ${rateWindowStart(now)}::timestamptz AND f.rendered) AS "recentFrames",
  (SELECT min(fj.assigned_at) FROM frame_jobs fj WHERE fj.render_job_id = j.id) AS "renderingSince",
  (SELECT count(DISTINCT fj.node_id)::int FROM frame_jobs fj
    WHERE fj.render_job_id = j.id AND fj.status IN ('Assigned', 'Rendering')) AS "activeNodes",
  (SELECT l.message FROM job_logs l WHERE l.render_job_id = j.id ORDER BY l.timestamp DESC, l.id DESC LIMIT 1) AS message`;

function eventOf(row: ProgressRow, now: Date): JobEvent {
  const progress = progressOf({
    job: { id: row.id, step: row.step, totalFrames: row.totalFrames, imagePreviewB64: row.imagePreviewB64 },
    framesRendered: row.framesRendered,
    recentFrames: row.recentFrames,
    renderingSince: row.renderingSince,
    activeNodes: row.activeNodes,
    message: row.message,
    now,
  });
  return { jobId: row.id, userId: row.userId, step: row.step, seq: row.seq, progress };
}

/**
 * Records one event per job (however often a job appears) at the end of the transaction that
 * changed them, and answers them for publishing after commit. `withPreview` names the jobs whose
 * preview this transaction changed; the others' events leave previewB64 null.
 */
export async function recordJobEvents(
  db: Tx | Sql,
  jobIds: Iterable<string>,
  now: Date,
  options: { withPreview?: ReadonlySet<string> } = {},
): Promise<JobEvent[]> {
  const ids = [...new Set(jobIds)];
  if (ids.length === 0) return [];
  const sql = sqlOf(db);
  const rows = await sql<ProgressRow>(
    Prisma.sql`UPDATE render_jobs AS j SET event_seq = j.event_seq + 1 WHERE j.id = ANY(${ids}::uuid[]) RETURNING ${progressColumns(now)}`,
    'record-job-events',
  );
  const events = rows.map((row) => {
    const event = eventOf(row, now);
    return options.withPreview?.has(row.id) ? event : { ...event, progress: { ...event.progress, previewB64: null } };
  });
  const recorded = JSON.stringify(events.map((event) => ({ render_job_id: event.jobId, seq: event.seq, payload: event })));
  await sql(
    Prisma.sql`
      INSERT INTO render_job_events (render_job_id, seq, created_at, payload)
      SELECT e.render_job_id, e.seq, ${now}, e.payload FROM jsonb_to_recordset(${recorded}::jsonb) AS e(render_job_id uuid, seq int, payload jsonb)`,
    'insert-job-events',
  );
  return events;
}

/** Where the job stands now, as an event carrying its latest seq and its preview. */
export async function currentJobEvent(db: PrismaClient | Tx, jobId: string, now: Date): Promise<JobEvent | null> {
  const [row] = await db.$queryRaw<ProgressRow[]>`SELECT ${progressColumns(now)} FROM render_jobs AS j WHERE j.id = ${jobId}::uuid`;
  return row ? eventOf(row, now) : null;
}

/** The recorded events after `afterSeq`, oldest first, at most a page. */
export async function recordedJobEvents(db: PrismaClient, jobId: string, afterSeq: number): Promise<JobEvent[]> {
  const rows = await db.renderJobEvent.findMany({
    where: { renderJobId: jobId, seq: { gt: afterSeq } },
    orderBy: { seq: 'asc' },
    take: PAGE,
    select: { payload: true },
  });
  return rows.map((row) => row.payload as unknown as JobEvent);
}

/** Removes events older than EVENT_RETENTION_HOURS, in batches; harmless on several replicas at once. */
export async function pruneJobEvents(db: PrismaClient, now: Date, batch = 5000): Promise<{ deleted: number }> {
  const before = new Date(now.getTime() - EVENT_RETENTION_HOURS * 60 * 60 * 1000);
  let deleted = 0;
  for (;;) {
    const count = await db.$executeRaw`
      DELETE FROM render_job_events WHERE ctid IN (
        SELECT ctid FROM render_job_events WHERE created_at < ${before}::timestamptz LIMIT ${batch})`;
    deleted += count;
    if (count < batch) return { deleted };
  }
}

/** Each job's latest seq (render_jobs.event_seq), for the jobs of these ids that exist. */
export async function latestEventSeqs(db: PrismaClient, jobIds: readonly string[]): Promise<Map<string, number>> {
  const rows = await db.renderJob.findMany({ where: { id: { in: [...jobIds] } }, select: { id: true, eventSeq: true } });
  return new Map(rows.map((row) => [row.id, row.eventSeq]));
}

/** A subscriber as the tail watch sees it. */
export interface TailFollower {
  /** The seq it waits for next. */
  next(): number;
  /** Reads what it missed from the table. */
  catchUp(): void;
}

export interface TailWatch {
  /** Checks on the follower of this job until the answered function is called. */
  watch(jobId: string, follower: TailFollower): () => void;
}

/**
 * One per process: every intervalMs, while anyone follows a job here, one read of the followed
 * jobs' latest seqs. Behind once may be an event still on its way through the bus; behind twice
 * at the same seq is one that will not come.
 */
export function tailWatch(latestSeqs: (jobIds: readonly string[]) => Promise<Map<string, number>>, intervalMs = TAIL_CHECK_MS): TailWatch {
  const followers = new Map<string, Map<TailFollower, { behindAt?: number }>>();
  let timer: NodeJS.Timeout | undefined;
  let checking = false;

  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const latest = await latestSeqs([...followers.keys()]);
      for (const [jobId, watched] of followers) {
        const seq = latest.get(jobId);
        for (const [follower, state] of watched) {
          const next = follower.next();
          if (seq === undefined || seq < next) state.behindAt = undefined;
          else if (state.behindAt === next) follower.catchUp();
          else state.behindAt = next;
        }
      }
    } catch {
      // The database is away: the next check tries again, and followers catch up on their own once it is back.
    } finally {
      checking = false;
    }
  };

  return {
    watch(jobId, follower) {
      let watched = followers.get(jobId);
      if (!watched) followers.set(jobId, (watched = new Map()));
      watched.set(follower, {});
      if (!timer) {
        timer = setInterval(() => void check(), intervalMs);
        timer.unref();
      }
      return () => {
        watched.delete(follower);
        if (watched.size === 0 && followers.get(jobId) === watched) followers.delete(jobId);
        if (followers.size === 0) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
  };
}

export interface FollowOptions {
  bus: EventBus;
  topic: string;
  /** The job's id, for the tail watch. */
  jobId: string;
  tail: TailWatch;
  /** Where the job stands now. */
  current: () => Promise<JobEvent>;
  /** Recorded events after a seq, oldest first, at most a page. */
  recorded: (afterSeq: number) => Promise<JobEvent[]>;
  /** Resume after this seq instead of starting from where the job stands now. */
  afterSeq?: number;
  gapGraceMs?: number;
}

/** The feeds of the jobs followed through each bus, by topic. */
const feedsByBus = new WeakMap<EventBus, Map<string, JobFeed>>();

function feedsOf(bus: EventBus): Map<string, JobFeed> {
  let feeds = feedsByBus.get(bus);
  if (!feeds) feedsByBus.set(bus, (feeds = new Map()));
  return feeds;
}

/**
 * One job's events on this replica, handed to each of its subscribers in seq order from where
 * the feed took its position: one bus subscription, one reorder buffer, one reconnect listener
 * and one tail-watch entry per job, however many follow it. Released with its last subscriber.
 */
class JobFeed implements TailFollower {
  readonly subscribers = new Set<ProgressSubscriber>();
  /** Where the job stood when the feed took its position, read once its bus subscription was active. */
  readonly ready: Promise<JobEvent>;
  private readonly pending = new Map<number, JobEvent>();
  /** The seq handed out next; 0 until the feed has its position. */
  private expected = 0;
  private closed = false;
  private subscribed: Promise<() => Promise<void>> | undefined;
  private stopReconnects: (() => void) | undefined;
  private stopTailWatch: (() => void) | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;

  constructor(
    private readonly feeds: Map<string, JobFeed>,
    private readonly options: FollowOptions,
  ) {
    this.ready = this.open();
    // A feed without a position is no use to anyone: the next subscriber starts another.
    this.ready.catch(() => this.forget());
  }

  next(): number {
    return this.expected;
  }

  /** Reads what the bus did not bring; one read at a time, retried while the database is away. */
  catchUp(): Promise<void> {
    if (this.closed || this.expected === 0) return Promise.resolve();
    if (this.filling) return this.filling;
    this.filling = this.readRecorded()
      .catch(() => {
        if (this.closed) return;
        const retry = setTimeout(() => void this.catchUp(), Math.max(this.grace, 1000));
        retry.unref();
      })
      .finally(() => {
        this.filling = undefined;
      });
    return this.filling;
  }

  /** Answers once the feed has let go of the bus, when this was its last subscriber. */
  async remove(subscriber: ProgressSubscriber): Promise<void> {
    if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
    this.closed = true;
    this.forget();
    clearTimeout(this.gapTimer);
    this.stopReconnects?.();
    this.stopTailWatch?.();
    const unsubscribe = await this.subscribed?.catch(() => undefined);
    await unsubscribe?.();
  }

  private get grace(): number {
    return this.options.gapGraceMs ?? GAP_GRACE_MS;
  }

  private forget(): void {
    if (this.feeds.get(this.options.topic) === this) this.feeds.delete(this.options.topic);
  }

  private async open(): Promise<JobEvent> {
    const { bus } = this.options;
    this.subscribed = bus.subscribe(this.options.topic, (payload) => this.receive(payload as JobEvent));
    await this.subscribed;
    if (!this.closed) {
      this.stopReconnects = bus.onReconnect(() => void this.catchUp());
      this.stopTailWatch = this.options.tail.watch(this.options.jobId, this);
    }
    const now = await this.options.current();
    if (!this.closed) {
      // Events up to now.seq are in the state its subscribers start from; later ones come from here.
      this.expected = now.seq + 1;
      this.drain();
    }
    return now;
  }

  private receive(event: JobEvent): void {
    if (this.closed || typeof event?.seq !== 'number' || event.seq < this.expected) return;
    this.pending.set(event.seq, event);
    if (this.expected > 0) this.drain();
  }

  private deliver(event: JobEvent): void {
    for (const subscriber of this.subscribers) subscriber.offer(event);
  }

  private drain(): void {
    for (const seq of this.pending.keys()) if (seq < this.expected) this.pending.delete(seq);
    for (let event = this.pending.get(this.expected); event !== undefined; event = this.pending.get(this.expected)) {
      this.pending.delete(this.expected);
      this.expected += 1;
      this.deliver(event);
    }
    if (this.pending.size === 0) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    } else if (this.gapTimer === undefined && !this.closed) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        void this.catchUp();
      }, this.grace);
      this.gapTimer.unref();
    }
  }

  /** Starts over from where the job stands now: for events no longer recorded. */
  private async restart(): Promise<void> {
    const now = await this.options.current();
    if (this.closed || now.seq < this.expected) return;
    this.expected = now.seq + 1;
    this.deliver(now);
    this.drain();
  }

  private async readRecorded(): Promise<void> {
    for (;;) {
      const events = await this.options.recorded(this.expected - 1);
      if (this.closed) return;
      const first = events[0];
      if (first !== undefined && first.seq > this.expected) return this.restart();
      for (const event of events) this.pending.set(event.seq, event);
      this.drain();
      if (events.length < PAGE) {
        // A later event arrived, yet the table has nothing at `expected`: only pruning does that.
        if (events.length === 0 && this.pending.size > 0) return this.restart();
        return;
      }
    }
  }
}

/**
 * One subscriber of a job: the events it has not taken yet, the seq it waits for, and the preview
 * it carries forward. While it reads where it starts, what its feed hands out waits in `early`.
 */
class ProgressSubscriber extends PushQueue<SequencedProgress> {
  feed: JobFeed | undefined;
  /** The seq it waits for next. */
  expected = 1;
  preview: string | null = null;
  early: JobEvent[] | undefined = [];

  offer(event: JobEvent): void {
    if (this.early) this.early.push(event);
    else if (event.seq >= this.expected) this.emit(event);
  }

  emit(event: JobEvent): void {
    if (event.progress.previewB64 !== null) this.preview = event.progress.previewB64;
    this.expected = event.seq + 1;
    this.push({ ...event.progress, previewB64: this.preview, seq: event.seq });
  }

  /** Takes what the feed handed out while it started, then each event as it comes. */
  goLive(): void {
    const early = this.early ?? [];
    this.early = undefined;
    for (const event of early) if (event.seq >= this.expected) this.emit(event);
  }

  protected override onStop(): Promise<void> {
    return this.feed?.remove(this) ?? Promise.resolve();
  }

  // Nothing follows a terminal step: its subscribers are done.
  protected override isLast(progress: SequencedProgress): boolean {
    return TERMINAL_STEPS.includes(progress.step);
  }
}

/**
 * Adds the subscriber to its job's feed, starting one when there is none, and answers where the
 * job stood after it joined: a feed hands out every event after its own position, and whoever
 * joins later reads a position at least as recent, so nothing falls between the two.
 */
async function join(subscriber: ProgressSubscriber, options: FollowOptions): Promise<JobEvent> {
  const feeds = feedsOf(options.bus);
  for (;;) {
    let feed = feeds.get(options.topic);
    const starting = feed === undefined;
    if (feed === undefined) {
      feed = new JobFeed(feeds, options);
      feeds.set(options.topic, feed);
    }
    subscriber.feed = feed;
    feed.subscribers.add(subscriber);
    let position: JobEvent;
    try {
      position = await feed.ready;
    } catch (error) {
      await feed.remove(subscriber);
      if (starting) throw error;
      continue;
    }
    // The feed read its position after its starter joined, but maybe before this one did.
    return starting ? position : options.current();
  }
}

/**
 * Hands a subscriber resuming at `expected` the recorded events, then, when those stop short of
 * where the job stood at `now` (pruned), where it stands at that point.
 */
async function resume(subscriber: ProgressSubscriber, options: FollowOptions, now: JobEvent): Promise<void> {
  for (;;) {
    const events = await options.recorded(subscriber.expected - 1);
    if (subscriber.done) return;
    const first = events[0];
    if (first !== undefined && first.seq > subscriber.expected) break;
    for (const event of events) if (event.seq >= subscriber.expected) subscriber.emit(event);
    if (events.length < PAGE) {
      if (subscriber.expected > now.seq) return;
      break;
    }
  }
  const latest = await options.current();
  if (!subscriber.done && latest.seq >= subscriber.expected) subscriber.emit(latest);
}

/**
 * A subscriber's view of one job: where it stands (or the events after `afterSeq`), then every
 * event exactly once, in seq order, up to the first one in a terminal step, where it ends. The
 * preview is carried forward from the event that set it.
 */
export async function followProgress(options: FollowOptions): Promise<AsyncIterableIterator<SequencedProgress>> {
  const subscriber = new ProgressSubscriber();
  try {
    const now = await join(subscriber, options);
    subscriber.preview = now.progress.previewB64;
    if (options.afterSeq === undefined || options.afterSeq > now.seq) {
      subscriber.emit(now);
      subscriber.goLive();
    } else {
      subscriber.expected = options.afterSeq + 1;
      await resume(subscriber, options, now);
      subscriber.goLive();
      // Resumed past the terminal event (a client that heard it but not the completion): nothing
      // follows it, so the subscription completes now instead of waiting forever.
      if (subscriber.expected > now.seq && TERMINAL_STEPS.includes(now.progress.step)) await subscriber.end();
    }
  } catch (error) {
    await subscriber.end();
    throw error;
  }
  return subscriber;
}
