import type { EventBus } from '../../ports.ts';

export interface MemoryBusOptions {
  /** Receives exceptions thrown by listeners, which must not stop delivery to the others. */
  onListenerError?: (error: unknown, topic: string) => void;
}

interface Subscription {
  listener: (payload: unknown) => void;
  active: boolean;
}

/**
 * The embedded default for a single replica. Payloads go through JSON exactly as on Redis, so
 * code that publishes a Date or a bigint fails in development instead of only in production.
 */
export function createMemoryBus(options: MemoryBusOptions = {}): EventBus {
  const onListenerError = options.onListenerError ?? reportListenerError;
  const topics = new Map<string, Set<Subscription>>();
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new Error('The event bus is closed');
  };

  return {
    async publish(topic, payload) {
      assertOpen();
      const message = serialize(payload);
      const subscriptions = topics.get(topic);
      if (subscriptions === undefined) return;
      // Recipients are fixed at publish time, as Redis does; one microtask per publish keeps
      // delivery in publish order across all topics.
      const recipients = [...subscriptions];
      queueMicrotask(() => {
        const delivered: unknown = JSON.parse(message);
        for (const subscription of recipients) {
          if (!subscription.active) continue;
          try {
            subscription.listener(delivered);
          } catch (error) {
            onListenerError(error, topic);
          }
        }
      });
    },

    async subscribe(topic, listener) {
      assertOpen();
      const subscription: Subscription = { listener, active: true };
      let subscriptions = topics.get(topic);
      if (subscriptions === undefined) {
        subscriptions = new Set();
        topics.set(topic, subscriptions);
      }
      subscriptions.add(subscription);
      return async () => {
        subscription.active = false;
        const current = topics.get(topic);
        if (current === undefined) return;
        current.delete(subscription);
        if (current.size === 0) topics.delete(topic);
      };
    },

    onReconnect() {
      return () => undefined;
    },

    async ping() {
      assertOpen();
    },

    async close() {
      closed = true;
      for (const subscriptions of topics.values()) {
        for (const subscription of subscriptions) subscription.active = false;
      }
      topics.clear();
    },
  };
}

function serialize(payload: unknown): string {
  const message = JSON.stringify(payload);
  if (message === undefined) throw new TypeError('An event payload must be representable as JSON');
  return message;
}

function reportListenerError(error: unknown, topic: string): void {
  process.emitWarning(error instanceof Error ? error : String(error), { type: 'EventListenerError', detail: topic });
}
