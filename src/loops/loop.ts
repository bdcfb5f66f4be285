// A background loop: runs a pass, waits, runs again, until stopped. Passes never overlap, a
// failing pass is logged and retried on the next tick, and stop() waits for the pass under way.
// Safety across replicas is the pass's job (advisory locks, SKIP LOCKED), not the loop's.
import type { Logger } from 'pino';

export interface LoopOptions {
  name: string;
  intervalMs: number;
  /** One pass; what it returns is logged at debug level. */
  run: () => Promise<unknown>;
  logger: Logger;
  /** Told how long each successful pass took, in seconds (metrics). */
  onPass?: (seconds: number) => void;
}

export interface Loop {
  name: string;
  start(): void;
  /** Runs a pass now, outside the schedule (tests, and callers that know work just arrived). */
  runOnce(): Promise<unknown>;
  stop(): Promise<void>;
}

export function createLoop({ name, intervalMs, run, logger, onPass }: LoopOptions): Loop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = true;

  const pass = async (): Promise<unknown> => {
    if (running) return running;
    const started = performance.now();
    running = run()
      .then((result) => {
        onPass?.((performance.now() - started) / 1000);
        if (result !== undefined) logger.debug({ loop: name, result }, 'loop pass');
        return result;
      })
      .catch((error: unknown) => {
        logger.error({ loop: name, err: error }, 'loop pass failed');
        return undefined;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void pass().finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  return {
    name,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    runOnce: pass,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
