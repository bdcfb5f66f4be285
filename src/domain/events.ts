// The topics published on the event bus, in one map so publishers and subscribers agree.
// Payloads carry ids and plain values; subscribers re-read rows they need.
import type { EventBus } from '../ports.ts';

export interface EventPayloads {
  renderJobUpdated: { jobId: string; userId: string; step: string };
  nodeStatusChanged: { nodeId: string; status: string };
}

export type Topic = keyof EventPayloads;

export const topics = {
  renderJobUpdated: (userId: string) => `render-job-updated:user:${userId}`,
  renderJobUpdatedAll: 'render-job-updated:all',
  nodeStatusChanged: 'node-status-changed',
} as const;

export async function publishJobUpdated(bus: EventBus, payload: EventPayloads['renderJobUpdated']): Promise<void> {
  await Promise.all([
    bus.publish(topics.renderJobUpdated(payload.userId), payload),
    bus.publish(topics.renderJobUpdatedAll, payload),
  ]);
}

export async function publishNodeStatusChanged(
  bus: EventBus,
  payload: EventPayloads['nodeStatusChanged'],
): Promise<void> {
  await bus.publish(topics.nodeStatusChanged, payload);
}
