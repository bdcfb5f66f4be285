// The topics published on the event bus, in one place so publishers and subscribers agree.
// Payloads carry ids and plain values; subscribers re-read the rows they show.
import type { EventBus } from '../ports.ts';

export interface JobChanged {
  jobId: string;
  userId: string;
  step: string;
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

/** Every change of a job: its owner's and the admins' job feeds, and its progress feed. */
export async function publishJobChanged(bus: EventBus, change: JobChanged): Promise<void> {
  await Promise.all([
    bus.publish(topics.renderJobUpdated(change.userId), change),
    bus.publish(topics.renderJobUpdatedAll, change),
    bus.publish(topics.renderProgress(change.jobId), change),
  ]);
}

export async function publishNodeStatusChanged(bus: EventBus, change: NodeChanged): Promise<void> {
  await bus.publish(topics.nodeStatusChanged, change);
}

export async function publishSnapshotUpdated(bus: EventBus, change: SnapshotChanged): Promise<void> {
  await bus.publish(topics.snapshotUpdated(change.snapshotId), change);
}

/**
 * The events of a topic as an async iterator, for GraphQL subscriptions: buffered in arrival
 * order, and unsubscribed when the consumer stops (return) or the iterator is thrown into.
 */
export async function topicEvents<T>(bus: EventBus, topic: string, first: T[] = []): Promise<AsyncIterableIterator<T>> {
  // `first` lets a subscriber start from the current state instead of waiting for a change.
  const buffered: T[] = [...first];
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  let done = false;
  const unsubscribe = await bus.subscribe(topic, (payload) => {
    if (done) return;
    if (waiting) {
      const resolve = waiting;
      waiting = undefined;
      resolve({ value: payload as T, done: false });
    } else {
      buffered.push(payload as T);
    }
  });
  const finish = async (): Promise<IteratorResult<T>> => {
    if (!done) {
      done = true;
      waiting?.({ value: undefined, done: true });
      waiting = undefined;
      await unsubscribe();
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
    return: finish,
    async throw(error) {
      await finish();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** Each event of `events` turned into what subscribers see; stopping the result stops `events`. */
export function mapEvents<T, R>(events: AsyncIterableIterator<T>, map: (event: T) => Promise<R>): AsyncIterableIterator<R> {
  const mapped: AsyncIterableIterator<R> = {
    async next() {
      const next = await events.next();
      return next.done ? { value: undefined, done: true } : { value: await map(next.value), done: false };
    },
    async return() {
      await events.return?.();
      return { value: undefined, done: true };
    },
    async throw(error) {
      await events.return?.();
      throw error;
    },
    [Symbol.asyncIterator]: () => mapped,
  };
  return mapped;
}
