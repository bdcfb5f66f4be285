// One row per measured figure, printed as a table and handed to the runner (bench/run.ts), which
// collects every benchmark's rows into one table and into BENCHMARKS.md.
import { appendFileSync } from 'node:fs';

export interface Row {
  benchmark: string;
  /** What was measured, with its unit: "heartbeats/s", "p99 ms", "statements per request". */
  metric: string;
  value: number;
  /** The same figure for the baseline measured in the same run, when there is one. */
  baseline?: number;
  /** value / baseline, or baseline / value for figures where lower is better. */
  ratio?: number;
  /** The target for this figure, as text ("≥ 1.0x", "≤ 25 ms"). */
  goal?: string;
  met?: boolean;
  note?: string;
}

/** A row compared with its baseline; `higherIsBetter` decides which way the ratio reads. */
export function compared(
  row: Omit<Row, 'ratio'> & { baseline: number },
  higherIsBetter: boolean,
): Row {
  const ratio = higherIsBetter ? row.value / row.baseline : row.baseline / row.value;
  return { ...row, ratio };
}

const format = (value: number | undefined, digits = 2): string => {
  if (value === undefined || Number.isNaN(value)) return '';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toFixed(digits)).toString();
};

const COLUMNS: Array<[string, (row: Row) => string]> = [
  ['benchmark', (row) => row.benchmark],
  ['metric', (row) => row.metric],
  ['value', (row) => format(row.value)],
  ['baseline', (row) => format(row.baseline)],
  ['ratio', (row) => (row.ratio === undefined ? '' : `${format(row.ratio)}x`)],
  ['goal', (row) => row.goal ?? ''],
  ['met', (row) => (row.met === undefined ? '' : row.met ? 'yes' : 'NO')],
  ['note', (row) => row.note ?? ''],
];

/** A Markdown table, which reads as well on a terminal as in BENCHMARKS.md. */
export function table(rows: readonly Row[]): string {
  const cells = rows.map((row) => COLUMNS.map(([, cell]) => cell(row)));
  const widths = COLUMNS.map(([title], index) => Math.max(title.length, ...cells.map((line) => line[index]!.length)));
  const line = (values: string[]) => `| ${values.map((value, index) => value.padEnd(widths[index]!)).join(' | ')} |`;
  return [
    line(COLUMNS.map(([title]) => title)),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...cells.map(line),
  ].join('\n');
}

/** Prints a benchmark's rows; under the runner, also hands them over (one JSON line each). */
export function report(rows: readonly Row[]): void {
  process.stdout.write(`\n${table(rows)}\n`);
  const file = process.env.BENCH_RESULTS_FILE;
  if (file) appendFileSync(file, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
}
