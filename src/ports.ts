// The interfaces the domain needs from the outside world. Each has a production adapter and an
// embedded default under src/adapters/.
import type { Readable } from 'node:stream';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * Publish/subscribe across every replica. Payloads cross JSON: publish ids and plain values,
 * never Dates or class instances.
 */
export interface EventBus {
  publish(topic: string, payload: unknown): Promise<void>;
  /** Resolves once the subscription is active, so no event published afterwards is missed. */
  subscribe(topic: string, listener: (payload: unknown) => void): Promise<() => Promise<void>>;
  /**
   * Calls `listener` each time a connection to the broker is back after a drop, once its
   * subscriptions are active again. Events published meanwhile may have been lost, so a
   * subscriber that must miss nothing catches up from its durable record. Answers a function that
   * removes the listener. The in-process bus never drops, so it never calls it.
   */
  onReconnect(listener: () => void): () => void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoredObject {
  body: Readable;
  contentType: string;
  size: number;
}

export interface PresignedUrl {
  url: string;
  expiresAt: Date;
}

export interface ObjectStore {
  put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<void>;
  /** null when there is no such object. */
  get(key: string): Promise<StoredObject | null>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  presignGet(key: string, expiresInSeconds: number): Promise<PresignedUrl>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Remembers single-use values (request signatures) for a while, across replicas. */
export interface NonceStore {
  /** true the first time a value is claimed within ttlSeconds, false afterwards. */
  claim(value: string, ttlSeconds: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Requests counted in fixed windows, for rate limits; shared by every replica where it can be. */
export interface RateLimitCounter {
  /** Counts one request against `key`; a window starts with its first request and lasts windowMs. */
  hit(key: string, windowMs: number): Promise<WindowCount>;
  close(): Promise<void>;
}

export interface WindowCount {
  /** Requests in the current window, this one included. */
  count: number;
  /** Until the window ends. */
  resetInMs: number;
}
