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
 */
export function pushQueue<T>(onStop: () => Promise<void>, isLast: (value: T) => boolean = () => false) {
  const buffered: T[] = [];
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  let stopped: Promise<void> | undefined;
  const finished = (): IteratorResult<T> => ({ value: undefined, done: true });
  const stop = (): Promise<void> => {
    if (!stopped) {
      waiting?.(finished());
      waiting = undefined;
      stopped = onStop();
      // Stopped by its last value, the queue may never be asked again: a failed stop must not be
      // an unhandled rejection, while whoever awaits it still gets the failure.
      stopped.catch(() => undefined);
    }
    return stopped;
  };
  const end = async (): Promise<IteratorResult<T>> => {
    await stop();
    return finished();
  };
  const iterator: AsyncIterableIterator<T> = {
    next() {
      if (buffered.length > 0) return Promise.resolve({ value: buffered.shift() as T, done: false });
      if (stopped) return end();
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    return: end,
    async throw(error) {
      await end();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return {
    push(value: T) {
      if (stopped) return;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value, done: false });
      } else {
        buffered.push(value);
      }
      if (isLast(value)) void stop();
    },
    end,
    get done() {
      return stopped !== undefined;
    },
    iterator,
  };
}

export interface TopicEventsOptions<T> {
  /** Where the subject stands now, read once the subscription is active so no change is missed. */
  current?: () => Promise<T>;
  /** A value after which the topic has nothing more to say; the iterator ends once it is delivered. */
  isLast?: (value: T) => boolean;
}

/**
 * The events of a topic as an async iterator, for GraphQL subscriptions: buffered in arrival
 * order, and unsubscribed when the consumer stops (return), the iterator is thrown into, or the
 * last value was delivered.
 */
export async function topicEvents<T>(bus: EventBus, topic: string, options: TopicEventsOptions<T> = {}): Promise<AsyncIterableIterator<T>> {
  let unsubscribe: (() => Promise<void>) | undefined;
  const queue = pushQueue<T>(async () => {
    await unsubscribe?.();
  }, options.isLast);
  unsubscribe = await bus.subscribe(topic, (payload) => queue.push(payload as T));
  if (options.current) {
    try {
      queue.push(await options.current());
    } catch (error) {
      await queue.end();
      throw error;
    }
  }
  return queue.iterator;
}
