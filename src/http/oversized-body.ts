// A request whose body is over the limit is refused with 413, but a client still sending that
// body only reads the answer if the connection stays open until it has sent everything: closed
// under it, its next write fails (EPIPE, reset) and the 413 is lost. So the rest of the body is
// read and dropped before answering, up to a cap, so that nobody can make the service read
// forever; past the cap the connection is closed (Fastify answers a refused body with
// `Connection: close` anyway).
import type { IncomingMessage } from 'node:http';

/** The most bytes of a refused body read and dropped beyond the limit. */
export const MAX_DISCARDED_BYTES = 8 * 1024 ** 2;
/** The longest the rest of a refused body may take to arrive. */
export const MAX_DISCARD_MS = 10_000;

/**
 * Reads and drops what is left of a refused request body (`limit` is the limit it broke).
 * Answers whether it all arrived; if not, reading stops and the connection must be closed.
 */
export function discardRestOfBody(request: IncomingMessage, limit: number): Promise<boolean> {
  if (request.complete) return Promise.resolve(true);
  if (Number(request.headers['content-length']) - limit > MAX_DISCARDED_BYTES) return Promise.resolve(false);
  return new Promise((resolve) => {
    let discarded = 0;
    const finish = (complete: boolean) => {
      clearTimeout(timer);
      request.off('data', onData).off('end', onEnd).off('close', onEnd);
      if (!complete) request.pause();
      resolve(complete);
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > MAX_DISCARDED_BYTES) finish(false);
    };
    const onEnd = () => finish(request.complete);
    const timer = setTimeout(() => finish(false), MAX_DISCARD_MS);
    request.on('data', onData).on('end', onEnd).on('close', onEnd);
    request.resume();
  });
}
