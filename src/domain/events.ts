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
export async function publishJobEvents(bus: EventBus, events: readonly JobEvent[]): Promise<void> {
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

export async function publishNodeStatusChanged(bus: EventBus, change: NodeChanged): Promise<void> {
  await bus.publish(topics.nodeStatusChanged, change);
}

export async function publishSnapshotUpdated(bus: EventBus, change: SnapshotChanged): Promise<void> {
  await bus.publish(topics.snapshotUpdated(change.snapshotId), change);
}

/**
 * An async iterator that its owner feeds with push(): values wait in order until asked for.
 * Stopping it (return or throw by the consumer, or end() by the owner) runs `onStop` once and
 * ends a pending next().
 */
export function pushQueue<T>(onStop: () => Promise<void>) {
  const buffered: T[] = [];
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  let done = false;
  const end = async (): Promise<IteratorResult<T>> => {
    if (!done) {
      done = true;
      waiting?.({ value: undefined, done: true });
      waiting = undefined;
      await onStop();
    }
    return { value: undefined, done: true };
  };
  const iterator: AsyncIterableIterator<T> = {
    next() {
      if (buffered.length > 0) return Promise.resolve({ value: buffered.shift() as T, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
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
      if (done) return;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value, done: false });
      } else {
        buffered.push(value);
      }
    },
    end,
    get done() {
      return done;
    },
    iterator,
  };
}

/**
 * The events of a topic as an async iterator, for GraphQL subscriptions: buffered in arrival
 * order, and unsubscribed when the consumer stops (return) or the iterator is thrown into.
 */
export async function topicEvents<T>(bus: EventBus, topic: string, first: T[] = []): Promise<AsyncIterableIterator<T>> {
  let unsubscribe: (() => Promise<void>) | undefined;
  const queue = pushQueue<T>(async () => {
    await unsubscribe?.();
  });
  // `first` lets a subscriber start from the current state instead of waiting for a change.
  for (const value of first) queue.push(value);
  unsubscribe = await bus.subscribe(topic, (payload) => queue.push(payload as T));
  return queue.iterator;
}
