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
