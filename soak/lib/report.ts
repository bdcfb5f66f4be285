// The soak's report, as Markdown: printed at the end and written to a file, so that a run's result
// can go into SOAK.md as it is.
import type { Check } from './checker.ts';
import type { FaultKind, FaultRecord } from './faults.ts';
import type { RequestHistory } from './history.ts';

export interface SoakReport {
  seed: number;
  durationSec: number;
  commit: string;
  startedAt: Date;
  wallSec: number;
  setup: { replicas: number; nodes: number; groups: number; users: number; network: string };
  faults: FaultRecord[];
  history: RequestHistory;
  checks: Check[];
  workload: Record<string, number>;
  fleet: Record<string, number>;
  subscribers: Record<string, number>;
  jobs: Record<string, number>;
  rss: { replica: number; maxMiB: number; lastMiB: number }[];
  rssGrowth?: number;
  drainSec: number;
}

const table = (header: string[], rows: Array<Array<string | number>>) =>
  [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');

const ms = (value: number | undefined) => (value === undefined ? 'none' : `${(value / 1000).toFixed(1)} s`);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? undefined : sorted[Math.floor(sorted.length / 2)];
};
const max = (values: number[]) => (values.length === 0 ? undefined : Math.max(...values));

/** The scope a fault hit, where recovery is looked for: its replica, its agent group, or everyone. */
export function scopeOf(fault: FaultRecord): string {
  if (fault.kind === 'replica-kill') return `replica:${fault.target}`;
  if (fault.target !== undefined) return `group:${fault.target}`;
  return 'all';
}

/** From a fault's end to the first success (and first accepted frame) in its scope. */
export function recoveries(faults: readonly FaultRecord[], history: RequestHistory) {
  return faults
    .filter((fault) => fault.endedAt !== undefined)
    .map((fault) => {
      const end = fault.endedAt as number;
      const scope = scopeOf(fault);
      const request = history.firstSuccessAfter(scope, end);
      // Frames are not told apart by replica: a replica's recovery is read from its requests only.
      const frame = scope.startsWith('replica:') ? undefined : history.firstFrameAfter(scope, end);
      return { kind: fault.kind, request: request === undefined ? undefined : request - end, frame: frame === undefined ? undefined : frame - end };
    });
}

export function renderReport(report: SoakReport): string {
  const violations = report.checks.reduce((sum, check) => sum + check.violations.length, 0);
  const byKind = new Map<FaultKind, FaultRecord[]>();
  for (const fault of report.faults) byKind.set(fault.kind, [...(byKind.get(fault.kind) ?? []), fault]);
  const recovered = recoveries(report.faults, report.history);
  const faultRows = [...byKind].map(([kind, faults]) => {
    const mine = recovered.filter((entry) => entry.kind === kind);
    const requests = mine.flatMap((entry) => (entry.request === undefined ? [] : [entry.request]));
    const frames = mine.flatMap((entry) => (entry.frame === undefined ? [] : [entry.frame]));
    return [
      kind,
      faults.length,
      faults.filter((fault) => fault.error).length,
      faults.reduce((sum, fault) => sum + (fault.liftRetries ?? 0), 0),
      ms(median(faults.map((fault) => (fault.endedAt ?? fault.startedAt) - fault.startedAt))),
      `${ms(median(requests))} / ${ms(max(requests))}`,
      frames.length === 0 ? 'n/a' : `${ms(median(frames))} / ${ms(max(frames))}`,
    ];
  });
  const statusRows = [...report.history.counts].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => [...key.split(' '), count]);
  const lines = [
    `## Soak: seed ${report.seed}, ${report.durationSec} s of load`,
    '',
    `${violations === 0 ? '**0 invariant violations.**' : `**${violations} invariant violations.**`} Repeat with \`npm run soak -- --duration ${report.durationSec} --seed ${report.seed}\`.`,
    '',
    `- Commit ${report.commit}, started ${report.startedAt.toISOString()}, ${Math.round(report.wallSec)} s wall time, ${report.drainSec.toFixed(0)} s of it draining the farm after the load.`,
    `- ${report.setup.replicas} replicas (compiled build, production mode) on a PostgreSQL and a Redis of the soak's own; ${report.setup.nodes} simulated nodes in ${report.setup.groups} groups; ${report.setup.users} users. Network: ${report.setup.network}.`,
    '',
    '### Invariants',
    '',
    table(
      ['invariant', 'checked', 'violations'],
      report.checks.map((check) => [check.invariant, check.checked, check.violations.length]),
    ),
    ...(violations === 0 ? [] : ['', ...report.checks.flatMap((check) => check.violations.map((violation) => `- ${violation.invariant}: ${violation.detail}`))]),
    '',
    '### Faults injected',
    '',
    '"Failed": the fault could not be injected or lifted. "Lifts retried": a replica that could not start yet (Redis away) was started again. Recovery: from the fault\'s end to the first successful request, and to the first accepted frame, in the scope it hit (its replica, its agent group, or everyone); median / max.',
    '',
    table(['fault', 'count', 'failed', 'lifts retried', 'median length', 'first success', 'first frame'], faultRows),
    '',
    '### Requests by door and status',
    '',
    'Status 0: no answer (refused, reset or timed out).',
    '',
    table(['door', 'status', 'count'], statusRows),
    '',
    '### Work done',
    '',
    table(['what', 'count'], [
      ...Object.entries(report.jobs).map(([key, value]) => [`jobs ${key}`, value]),
      ...Object.entries(report.workload).map(([key, value]) => [`users: ${key}`, value]),
      ...Object.entries(report.fleet).map(([key, value]) => [`fleet: ${key}`, value]),
      ...Object.entries(report.subscribers).map(([key, value]) => [`subscribers: ${key}`, value]),
    ]),
    '',
    '### Memory',
    '',
    table(['replica', 'max RSS (MiB)', 'last RSS (MiB)'], report.rss.map((entry) => [entry.replica, entry.maxMiB.toFixed(0), entry.lastMiB.toFixed(0)])),
    '',
    report.rssGrowth === undefined ? '' : `Median RSS, last fifth of the run against the second fifth: ${report.rssGrowth.toFixed(2)}x.`,
  ];
  return `${lines.join('\n')}\n`;
}
