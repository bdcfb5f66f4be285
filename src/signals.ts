// Stopping on SIGTERM (an orchestrator, `kill`, npm passing its own on) and SIGINT (Ctrl-C).

// A Ctrl-C at a terminal reaches npm's child twice: from the terminal, and forwarded by npm a few
// milliseconds later. A repeat that soon is that same keypress, not an impatient second one.
const SAME_KEYPRESS_MS = 1_000;

/**
 * Runs `stop` on the first SIGTERM or SIGINT. A second signal while it runs exits at once with
 * code 1, after `onForced` said so: a drain waiting on a client that never lets go can be cut short.
 */
export function stopOnSignals(stop: (signal: NodeJS.Signals) => Promise<unknown>, onForced: (signal: NodeJS.Signals) => void): void {
  let firstAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      void stop(signal);
    } else if (Date.now() - firstAt >= SAME_KEYPRESS_MS) {
      onForced(signal);
      process.exit(1);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
