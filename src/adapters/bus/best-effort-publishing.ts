import type { EventBus } from '../../ports.ts';

/**
 * Events are published after their change is committed, so a bus that cannot take one (Redis
 * away) must not turn a saved change into an error for the caller, who would retry a request
 * that already succeeded. The failure goes to onPublishFailed and the publish resolves;
 * subscribers catch up from the database when the bus is back.
 */
export function withBestEffortPublishing(bus: EventBus, onPublishFailed: (error: unknown, topic: string) => void): EventBus {
  return {
    ...bus,
    async publish(topic, payload) {
      try {
        await bus.publish(topic, payload);
      } catch (error) {
        // A payload that cannot cross JSON is a bug to fix, not an outage to ride out.
        if (error instanceof TypeError) throw error;
        onPublishFailed(error, topic);
      }
    },
  };
}
