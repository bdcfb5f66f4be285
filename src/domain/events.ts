// The topics published on the event bus, in one place so publishers and subscribers agree.
// Payloads carry ids and plain values. Job changes also carry their per-job seq and the progress
// values at commit (see jobs/job-events.ts), so progress subscribers need not re-read anything.
import type { EventBus } from '../ports.ts';
import type { RenderProgress } from './jobs/progress.ts';

export interface JobChanged {
  jobId: string;
  userId: string;
  step: string;
  seq: number;
}

/**
 * One change of a job, numbered per job in the transaction that made it. `progress.previewB64`
 * is set only on the events that changed the preview (it can be large); null means unchanged.
 */
export interface JobEvent extends JobChanged {
  progress: RenderProgress;
}

export interface NodeChanged {
  nodeId: string;
  status: string;
}

export interface SnapshotChanged {
  snapshotId: string;
  status: string;
}

/** What the notification service receives when a job asked to be told (tell_me_when_done). */
export interface RenderFinishedNotification {
  type: 'render.finished';
  user_id: string;
  job_id: string;
  outcome: 'Completed' | 'Failed';
  message: string | null;
}

export const topics = {
  renderJobUpdated: (userId: string) => `render-job-updated:user:${userId}`,
  renderJobUpdatedAll: 'render-job-updated:all',
  renderProgress: (jobId: string) => `render-progress:${jobId}`,
  nodeStatusChanged: 'node-status-changed',
  snapshotUpdated: (snapshotId: string) => `snapshot-updated:${snapshotId}`,
  /** Read by the notification service; on Redis this is the channel name. */
  notifications: 'render-notifications',
} as const;

/**
 * Job changes after their transaction committed: the owner's and the admins' job feeds get ids,
 * the job's progress feed the whole event. Events of one job go out in seq order from this
 * replica; subscribers put those of several replicas in order themselves.
 */
export async function publishJobEvents(bus: Pick<EventBus, 'publish'>, events: readonly JobEvent[]): Promise<void> {
  await Promise.all(
    events.map((event) => {
      const change: JobChanged = { jobId: event.jobId, userId: event.userId, step: event.step, seq: event.seq };
      return Promise.all([
        bus.publish(topics.renderJobUpdated(event.userId), change),
        bus.publish(topics.renderJobUpdatedAll, change),
        bus.publish(topics.renderProgress(event.jobId), event),
      ]);
    }),
  );
}

export async function publishNodeStatusChanged(bus: Pick<EventBus, 'publish'>, change: NodeChanged): Promise<void> {
  await bus.publish(topics.nodeStatusChanged, change);
}

export async function publishSnapshotUpdated(bus: EventBus, change: SnapshotChanged): Promise<void> {
  await bus.publish(topics.snapshotUpdated(change.snapshotId), change);
}

/**
 * An async iterator that its owner feeds with push(): values wait in order until asked for.
 * It stops when the consumer stops (return or throw), when the owner calls end(), or once a value
 * `isLast` accepts was pushed: that value is still delivered, then the iterator is done. Stopping
 * runs `onStop` once; whoever awaits the stop (end, return, or a next() once done) sees its failure.
 * Subclasses give onStop and isLast as methods: an idle subscription holds one object, not a
 * closure per operation.
 */
export class PushQueue<T> implements AsyncIterableIterator<T> {
  /** Values not asked for yet; none most of the time, and then no array is kept. */
  private buffered: T[] | undefined;
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private stopped: Promise<void> | undefined;

  protected onStop(): Promise<void> {
    return Promise.resolve();
  }

  protected isLast(_value: T): boolean {
    return false;
  }

  get done(): boolean {
    return this.stopped !== undefined;
  }

  push(value: T): void {
    if (this.stopped) return;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting({ value, done: false });
    } else {
      (this.buffered ??= []).push(value);
    }
    if (this.isLast(value)) void this.stop();
  }

  async end(): Promise<IteratorResult<T>> {
    await this.stop();
    return { value: undefined, done: true };
  }

  next(): Promise<IteratorResult<T>> {
    const buffered = this.buffered;
    if (buffered !== undefined) {
      const value = buffered.shift() as T;
      if (buffered.length === 0) this.buffered = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.stopped) return this.end();
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    return this.end();
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    await this.end();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private stop(): Promise<void> {
    if (!this.stopped) {
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
      this.stopped = this.onStop();
      // Stopped by its last value, the queue may never be asked again: a failed stop must not be
      // an unhandled rejection, while whoever awaits it still gets the failure.
      this.stopped.catch(() => undefined);
    }
    return this.stopped;
  }
}

export interface TopicEventsOptions<T> {
  /** Where the subject stands now, read once the subscription is active so no change is missed. */
  current?: () => Promise<T>;
  /** A value after which the topic has nothing more to say; the iterator ends once it is delivered. */
  isLast?: (value: T) => boolean;
}

class TopicQueue<T> extends PushQueue<T> {
  unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly last: ((value: T) => boolean) | undefined) {
    super();
  }

  protected override async onStop(): Promise<void> {
    await this.unsubscribe?.();
  }

  protected override isLast(value: T): boolean {
    return this.last?.(value) ?? false;
  }
}

/**
 * The events of a topic as an async iterator, for GraphQL subscriptions: buffered in arrival
 * order, and unsubscribed when the consumer stops (return), the iterator is thrown into, or the
 * last value was delivered.
 */
export async function topicEvents<T>(bus: EventBus, topic: string, options: TopicEventsOptions<T> = {}): Promise<AsyncIterableIterator<T>> {
  const queue = new TopicQueue<T>(options.isLast);
  queue.unsubscribe = await bus.subscribe(topic, (payload) => queue.push(payload as T));
  if (options.current) {
    try {
      queue.push(await options.current());
    } catch (error) {
      await queue.end();
      throw error;
    }
  }
  return queue;
}
