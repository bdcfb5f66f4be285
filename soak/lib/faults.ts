// The soak's fault schedule, drawn from its seed before the run starts, so that a printed seed and
// duration repeat it: what fails, when, for how long and where. Faults overlap; only one of each
// server (PostgreSQL, Redis) and one replica is down at a time, so the farm always has a door.
import { between, createRandom, type Random } from '../../agent-sim/random.ts';
import type { NetworkFault } from './fault-proxy.ts';

/** The agents' signatures are accepted within this many seconds of the service's clock. */
export const SIGNATURE_WINDOW_SEC = 300;

export type FaultKind =
  | 'replica-kill'
  | 'postgres-restart'
  | 'redis-restart'
  | 'agent-kill'
  | 'clock-skew-within'
  | 'clock-skew-beyond'
  | 'network-delay'
  | 'network-loss'
  | 'network-partition';

export const FAULT_KINDS: readonly FaultKind[] = [
  'replica-kill',
  'postgres-restart',
  'redis-restart',
  'agent-kill',
  'clock-skew-within',
  'clock-skew-beyond',
  'network-delay',
  'network-loss',
  'network-partition',
];

export interface PlannedFault {
  kind: FaultKind;
  /** ms after the load starts. */
  at: number;
  /** How long the fault lasts, in ms. */
  forMs: number;
  /** The replica or agent group it hits, where it hits one. */
  target?: number;
  /** Nodes it hits (agent kill, clock skew). */
  nodes?: number;
  /** Clock skew in seconds, or the network fault. */
  skewSec?: number;
  network?: NetworkFault;
}

/** Which faults cannot overlap: one replica down at a time, each server restarted once at a time, one network fault per group. */
function slotOf(fault: PlannedFault): string {
  if (fault.kind.startsWith('network-')) return `network:${fault.target}`;
  if (fault.kind === 'replica-kill') return 'replica';
  return fault.kind;
}

const seconds = (random: Random, low: number, high: number) => between(random, low, high) * 1000;

function draw(kind: FaultKind, random: Random, at: number, replicas: number, groups: number): PlannedFault {
  const sign = random() < 0.5 ? -1 : 1;
  switch (kind) {
    case 'replica-kill':
      return { kind, at, forMs: seconds(random, 2, 20), target: between(random, 0, replicas - 1) };
    case 'postgres-restart':
      return { kind, at, forMs: seconds(random, 1, 8) };
    case 'redis-restart':
      return { kind, at, forMs: seconds(random, 1, 8) };
    case 'agent-kill':
      return { kind, at, forMs: seconds(random, 3, 40), target: between(random, 0, groups - 1), nodes: between(random, 1, 4) };
    case 'clock-skew-within':
      return { kind, at, forMs: seconds(random, 20, 90), target: between(random, 0, groups - 1), nodes: between(random, 2, 8), skewSec: sign * between(random, 30, SIGNATURE_WINDOW_SEC - 60) };
    case 'clock-skew-beyond':
      return { kind, at, forMs: seconds(random, 5, 40), target: between(random, 0, groups - 1), nodes: between(random, 1, 4), skewSec: sign * between(random, SIGNATURE_WINDOW_SEC + 20, 3 * SIGNATURE_WINDOW_SEC) };
    case 'network-delay':
      return { kind, at, forMs: seconds(random, 10, 60), target: between(random, 0, groups - 1), network: { delayMs: between(random, 20, 400), lossRate: 0, partitioned: false } };
    case 'network-loss':
      return { kind, at, forMs: seconds(random, 10, 60), target: between(random, 0, groups - 1), network: { delayMs: 0, lossRate: between(random, 1, 8) / 100, partitioned: false } };
    case 'network-partition':
      return { kind, at, forMs: seconds(random, 3, 40), target: between(random, 0, groups - 1), network: { delayMs: 0, lossRate: 0, partitioned: true } };
  }
}

/**
 * The faults of a run of `durationMs`: every kind once, in a seeded order, within the first part
 * of the run (so that a 3-minute run meets them all), then further faults of any kind, starting on
 * average every `meanGapMs`. Every fault has ended by the end of the run.
 */
export function planFaults({ seed, durationMs, replicas, groups, meanGapMs = 12_000 }: { seed: number; durationMs: number; replicas: number; groups: number; meanGapMs?: number }): PlannedFault[] {
  const random = createRandom(seed);
  const firstRound = [...FAULT_KINDS];
  for (let index = firstRound.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [firstRound[index], firstRound[other]] = [firstRound[other] as FaultKind, firstRound[index] as FaultKind];
  }
  const busyUntil = new Map<string, number>();
  const planned: PlannedFault[] = [];
  // The first round is spread over at most the first half of the run.
  const firstGap = Math.min(meanGapMs, durationMs / 2 / firstRound.length);
  let at = Math.min(5_000, firstGap);
  const pending = [...firstRound];
  while (at < durationMs) {
    const kind = pending.shift() ?? (FAULT_KINDS[Math.floor(random() * FAULT_KINDS.length)] as FaultKind);
    const fault = draw(kind, random, at, replicas, groups);
    const slot = slotOf(fault);
    const start = Math.max(at, busyUntil.get(slot) ?? 0);
    const forMs = Math.min(fault.forMs, durationMs - start);
    if (forMs >= 1_000) {
      planned.push({ ...fault, at: start, forMs });
      busyUntil.set(slot, start + forMs + 1_000);
    }
    const gap = pending.length > 0 ? firstGap : -meanGapMs * Math.log(1 - random());
    at += Math.max(500, gap);
  }
  return planned.sort((a, b) => a.at - b.at);
}

/** What a fault looked like when it ran: planned, then when it truly started, ended and what it hit. */
export interface FaultRecord extends PlannedFault {
  startedAt: number;
  endedAt?: number;
  /** The nodes it hit, where it hit nodes. */
  nodeIds?: string[];
  /** Set when the fault could not be applied or lifted; the run goes on. */
  error?: string;
  /** Lifts that failed before one worked (a replica that could not start yet). */
  liftRetries?: number;
}
