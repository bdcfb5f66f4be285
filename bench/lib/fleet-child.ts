// One simulated fleet (agent-sim) in a process of its own, driven by fleet-process.ts over IPC: a
// simulator sharing the benchmark's event loop would count its own lag as the service's latency.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type FleetEvent, type FleetOptions, type FleetStats, startFleet } from '../../agent-sim/fleet.ts';

/** What the parent sends. */
export type ToFleet = { type: 'start'; options: Omit<FleetOptions, 'onEvent'> } | { type: 'window-start' } | { type: 'window-end' } | { type: 'stop' };

/** What a window's end reports. */
export interface FleetWindow {
  stats: FleetStats;
  /** Frames handed out in render_chunk commands during the window. */
  booked: number;
  /** Heartbeat round trips as the simulated agents saw them, in ms. */
  heartbeatMs: number[];
  /** This process's event-loop delay over the window, in ms. */
  loopLag: { p50: number; p99: number; max: number };
}

export type FromFleet =
  | { type: 'started'; online: number }
  | { type: 'encoded' }
  | { type: 'window-started'; stats: FleetStats }
  | ({ type: 'window-ended' } & FleetWindow)
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const tell = (message: FromFleet) => process.send?.(message);
const lag = monitorEventLoopDelay({ resolution: 5 });
let measuring = false;
let booked = 0;
let heartbeatMs: number[] = [];
let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;

function onEvent(event: FleetEvent): void {
  // The parent submits a new job for every one encoded, keeping the number in flight constant.
  if (event.type === 'encoded') tell({ type: 'encoded' });
  if (!measuring) return;
  if (event.type === 'heartbeat') heartbeatMs.push(event.ms);
  else if (event.type === 'command' && event.command.type === 'render_chunk') {
    booked += (event.command.end_frame as number) - (event.command.start_frame as number) + 1;
  }
}

process.on('message', (message: ToFleet) => {
  void (async () => {
    if (message.type === 'start') {
      fleet = await startFleet({ ...message.options, onEvent });
      tell({ type: 'started', online: fleet.stats().online });
    } else if (message.type === 'window-start' && fleet) {
      booked = 0;
      heartbeatMs = [];
      lag.reset();
      lag.enable();
      measuring = true;
      tell({ type: 'window-started', stats: fleet.stats() });
    } else if (message.type === 'window-end' && fleet) {
      measuring = false;
      lag.disable();
      const ms = (nanoseconds: number) => nanoseconds / 1e6;
      tell({
        type: 'window-ended',
        stats: fleet.stats(),
        booked,
        heartbeatMs,
        loopLag: { p50: ms(lag.percentile(50)), p99: ms(lag.percentile(99)), max: ms(lag.max) },
      });
    } else if (message.type === 'stop') {
      await fleet?.stop();
      tell({ type: 'stopped' });
      process.disconnect();
    }
  })().catch((error: unknown) => tell({ type: 'failed', message: error instanceof Error ? error.message : String(error) }));
});
