import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { Config } from './config.ts';

/** The service's log on stdout: JSON lines, or one readable line per event (LOG_FORMAT). */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const options = { level: config.logLevel, base: { service: 'render-orchestrator' } };
  // Synchronous as well: pino's default stream writes on libuv's thread pool, and on exit writes
  // what it still buffers from this thread, so the last line ("Stopped") could reach stdout before
  // the one in flight ("Shutting down"), as a CI run of the npm start test saw.
  if (config.logFormat === 'json') return pino(options, pino.destination({ dest: 1, sync: true }));
  // A stream in this thread rather than pino's `transport` option, whose worker thread loads
  // pino-pretty by name at run time. Synchronous, so that the lines written just before the
  // process exits (a failed start, the end of a shutdown) are not lost.
  return pino(
    options,
    pinoPretty({
      sync: true,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      // The same on every line of one process.
      ignore: 'pid,hostname,service',
      // Colours only for a terminal, unless NO_COLOR (no-color.org) says otherwise: a pipe or a
      // file given LOG_FORMAT=pretty gets no escape codes.
      colorize: process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
    }),
  );
}
