import { createClient } from 'redis';
import type { EventBus } from '../../ports.ts';

export interface RedisBusOptions {
  /** Namespaces the channels so that several deployments or test runs can share one Redis. */
  channelPrefix?: string;
  /** Shown in CLIENT LIST (suffixed `:pub` and `:sub`) to tell replicas' connections apart. */
  clientName?: string;
  /**
   * Receives connection errors (the client reconnects by itself) and exceptions thrown by
   * listeners, which must not stop delivery to the others.
   */
  onError?: (error: unknown) => void;
}

interface Subscription {
  listener: (payload: unknown) => void;
  active: boolean;
}

interface Channel {
  subscriptions: Set<Subscription>;
  subscribed: Promise<void>;
}

/**
 * Redis pub/sub, one channel per topic. Every local listener of a topic shares one Redis
 * subscription; Redis delivers a channel's messages in order on the one subscriber connection and
 * they are handed to the listeners synchronously, so per-topic order is kept end to end.
 */
export async function createRedisBus(url: string, options: RedisBusOptions = {}): Promise<EventBus> {
  const prefix = options.channelPrefix ?? '';
  const onError = options.onError ?? reportError;
  let connected = false;
  const publisher = createClient({
    url,
    name: options.clientName === undefined ? undefined : `${options.clientName}:pub`,
    // While Redis is away a publish fails at once instead of waiting for the reconnection with
    // the request that made it: nobody could receive the event meanwhile anyway.
    disableOfflineQueue: true,
    socket: {
      // A wrong REDIS_URL fails start-up with its error instead of retrying forever; once both
      // connections have been up, drops are retried so that a Redis restart is survived.
      reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2_000) : cause),
    },
  });
  const subscriber = publisher.duplicate({
    name: options.clientName === undefined ? undefined : `${options.clientName}:sub`,
  });
  publisher.on('error', onError);
  subscriber.on('error', onError);
  try {
    await publisher.connect();
    await subscriber.connect();
  } catch (error) {
    publisher.destroy();
    subscriber.destroy();
    throw error;
  }
  connected = true;

  // node-redis emits 'ready' on every connect, after it has re-sent the subscriptions. Both
  // connections count: messages published while the publisher was away were lost as well.
  const reconnectListeners = new Set<() => void>();
  const announceReconnect = () => {
    for (const listener of [...reconnectListeners]) {
      try {
        listener();
      } catch (error) {
        onError(error);
      }
    }
  };
  const channels = new Map<string, Channel>();
  /**
   * Channels whose SUBSCRIBE or UNSUBSCRIBE failed while Redis was away. Once the subscriber is
   * back, each gets whichever one it needs then: node-redis keeps a listener whose UNSUBSCRIBE
   * failed, and subscribes it again on reconnection.
   */
  const unsettled = new Set<string>();

  const onMessage = (message: string, channel: string) => {
    const entry = channels.get(channel);
    if (entry === undefined) return;
    let payload: unknown;
    try {
      payload = JSON.parse(message);
    } catch (error) {
      onError(error);
      return;
    }
    for (const subscription of [...entry.subscriptions]) {
      if (!subscription.active) continue;
      try {
        subscription.listener(payload);
      } catch (error) {
        onError(error);
      }
    }
  };

  // A subscription made while Redis is away is not refused: its listener is registered here and
  // its SUBSCRIBE sent when the connection is back. Meanwhile, and for the moment between the
  // reconnection and the SUBSCRIBE, the callers read what they miss from the database (reconnect
  // listeners, the events' tail watch), as they do for events published during the outage.
  const settle = (channel: string): Promise<void> => {
    unsettled.delete(channel);
    const sent = channels.has(channel) ? subscriber.subscribe(channel, onMessage) : subscriber.unsubscribe(channel, onMessage);
    return sent.catch((error: unknown) => {
      onError(error);
      unsettled.add(channel);
    });
  };
  // Before the reconnect listeners, so that their catch-up reads start after the SUBSCRIBE went out.
  subscriber.on('ready', () => {
    for (const channel of [...unsettled]) void settle(channel);
  });
  publisher.on('ready', announceReconnect);
  subscriber.on('ready', announceReconnect);

  let closed = false;
  // node-redis leaves a SUBSCRIBE on a closed client pending forever instead of refusing it.
  const assertOpen = () => {
    if (closed) throw new Error('The event bus is closed');
  };

  const release = async (channel: string, entry: Channel, subscription: Subscription) => {
    if (!subscription.active) return;
    subscription.active = false;
    entry.subscriptions.delete(subscription);
    if (entry.subscriptions.size > 0 || channels.get(channel) !== entry) return;
    channels.delete(channel);
    // A subscribe to the same topic that starts now gets a fresh entry and its own SUBSCRIBE,
    // which the connection sends after this UNSUBSCRIBE, so the channel ends up subscribed.
    // Leaving never fails for Redis being away (a socket closing during an outage has nobody to
    // tell): the UNSUBSCRIBE is sent again once it is back.
    await settle(channel);
  };

  return {
    async publish(topic, payload) {
      assertOpen();
      await publisher.publish(prefix + topic, serialize(payload));
    },

    async subscribe(topic, listener) {
      assertOpen();
      const channel = prefix + topic;
      let entry = channels.get(channel);
      if (entry === undefined) {
        entry = { subscriptions: new Set(), subscribed: Promise.resolve() };
        // Registered first: settle() subscribes the channels that are registered.
        channels.set(channel, entry);
        entry.subscribed = settle(channel);
      }
      const subscription: Subscription = { listener, active: true };
      entry.subscriptions.add(subscription);
      await entry.subscribed;
      const subscribed = entry;
      return () => release(channel, subscribed, subscription);
    },

    onReconnect(listener) {
      const registered = () => listener();
      reconnectListeners.add(registered);
      return () => {
        reconnectListeners.delete(registered);
      };
    },

    async ping() {
      assertOpen();
      await publisher.ping();
      if (!subscriber.isReady) throw new Error('The Redis subscriber connection is not ready');
    },

    async close() {
      closed = true;
      reconnectListeners.clear();
      for (const entry of channels.values()) {
        for (const subscription of entry.subscriptions) subscription.active = false;
      }
      channels.clear();
      unsettled.clear();
      await Promise.all([publisher.close(), subscriber.close()]);
    },
  };
}

function serialize(payload: unknown): string {
  const message = JSON.stringify(payload);
  if (message === undefined) throw new TypeError('An event payload must be representable as JSON');
  return message;
}

function reportError(error: unknown): void {
  process.emitWarning(error instanceof Error ? error : String(error), { type: 'RedisBusError' });
}
