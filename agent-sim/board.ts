// What the command line shows: a live bar per job on a terminal, periodic plain lines otherwise,
// and a summary table at the end.
import type { FleetEvent, FleetStats } from './events.ts';

interface JobView {
  id: string;
  /** Frame reports of this fleet the service accepted. */
  frames: number;
  total?: number;
  progress?: number;
  step?: string;
  firstSeen: number;
}

const FINISHED = new Set(['Completed', 'Failed', 'Cancelled']);
const SHOWN_JOBS = 8;
const BAR_WIDTH = 24;

function bar(fraction: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * BAR_WIDTH);
  return `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
}

function countsOf(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? 'none' : entries.map(([key, count]) => `${key} ${count}`).join(', ');
}

function rate(count: number, elapsedMs: number): string {
  return (elapsedMs > 0 ? count / (elapsedMs / 1000) : 0).toFixed(1);
}

/** Job ids are time-ordered (UUIDv7): their start is shared by jobs made together, their end is not. */
function shortId(id: string): string {
  return id.slice(-8);
}

export class Board {
  private readonly jobs = new Map<string, JobView>();
  private drawnLines = 0;

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {}

  observe(event: FleetEvent): void {
    const jobId =
      event.type === 'command' ? event.command.job_id : 'jobId' in event ? event.jobId : undefined;
    if (typeof jobId !== 'string') return;
    let job = this.jobs.get(jobId);
    if (!job) {
      job = { id: jobId, frames: 0, firstSeen: Date.now() };
      this.jobs.set(jobId, job);
    }
    if (event.type === 'frame' && event.accepted) job.frames++;
    if (event.type === 'encoded') job.step ??= 'Encoding';
  }

  /** Jobs whose progress is worth asking the service for: those shown and not finished. */
  jobsToPoll(): string[] {
    return this.shown()
      .filter((job) => !job.step || !FINISHED.has(job.step))
      .map((job) => job.id);
  }

  applyProgress(jobId: string, progress: { step?: unknown; progress?: unknown; total_frames?: unknown }): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    if (typeof progress.step === 'string') job.step = progress.step;
    if (typeof progress.progress === 'number') job.progress = progress.progress;
    if (typeof progress.total_frames === 'number') job.total = progress.total_frames;
  }

  private shown(): JobView[] {
    const all = [...this.jobs.values()];
    const running = all.filter((job) => !job.step || !FINISHED.has(job.step));
    const finished = all.filter((job) => job.step && FINISHED.has(job.step));
    return [...running, ...finished.reverse()].slice(0, SHOWN_JOBS);
  }

  private headline(stats: FleetStats, elapsedMs: number): string {
    return (
      `nodes ${stats.online}/${stats.nodes} online | frames ${stats.framesRendered} (${rate(stats.framesRendered, elapsedMs)}/s)` +
      ` | chunks ${stats.chunksCompleted} done ${stats.chunksFailed} failed | stale ${stats.staleReports}` +
      ` | crashes ${stats.crashesReported} | errors ${Object.values(stats.errors).reduce((sum, n) => sum + n, 0)}`
    );
  }

  /** The service's figure can trail the frames this fleet just reported, so the larger one wins. */
  private fractionOf(job: JobView): number | undefined {
    const local = job.total ? Math.min(1, job.frames / job.total) : undefined;
    const service = job.progress !== undefined ? job.progress / 100 : undefined;
    if (local === undefined || service === undefined) return local ?? service;
    return Math.max(local, service);
  }

  private jobLine(job: JobView): string {
    const fraction = this.fractionOf(job);
    const percent = fraction === undefined ? '   ?' : `${Math.round(fraction * 100)}%`.padStart(4);
    const frames = job.total !== undefined ? `${job.frames}/${job.total}` : `${job.frames}`;
    return `${shortId(job.id)} [${bar(fraction ?? 0)}] ${percent} ${frames.padStart(9)} frames ${job.step ?? ''}`.trimEnd();
  }

  /** Redraws the block of lines in place (terminal). */
  draw(stats: FleetStats, elapsedMs: number): void {
    const width = this.out.columns || 120;
    const jobs = this.shown();
    const lines = [this.headline(stats, elapsedMs), ...jobs.map((job) => this.jobLine(job))];
    if (this.jobs.size > jobs.length) lines.push(`... and ${this.jobs.size - jobs.length} more jobs`);
    const clear = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[0J` : '';
    this.out.write(`${clear}${lines.map((line) => line.slice(0, Math.max(20, width - 1))).join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  /** One line for logs (not a terminal). */
  line(stats: FleetStats, elapsedMs: number): void {
    const jobs = this.shown().map((job) => {
      const fraction = this.fractionOf(job);
      const frames = job.total !== undefined ? `${job.frames}/${job.total}` : `${job.frames}`;
      const percent = fraction === undefined ? '' : ` ${Math.round(fraction * 100)}%`;
      return `${shortId(job.id)}${percent} ${frames} frames${job.step ? ` ${job.step}` : ''}`;
    });
    this.out.write(`[${(elapsedMs / 1000).toFixed(0)}s] ${this.headline(stats, elapsedMs)}${jobs.length ? ` | ${jobs.join(', ')}` : ''}\n`);
  }

  summary(stats: FleetStats, elapsedMs: number, seed: number): string {
    const rows: [string, string][] = [
      ['nodes', `${stats.nodes} (${stats.alive} alive)`],
      ['run time', `${(elapsedMs / 1000).toFixed(1)} s`],
      ['seed', String(seed)],
      ['heartbeats', String(stats.heartbeats)],
      ['frames rendered', `${stats.framesRendered} (${stats.framesAccepted} accepted)`],
      ['frames/s', rate(stats.framesRendered, elapsedMs)],
      ['chunks', `${stats.chunksCompleted} completed, ${stats.chunksFailed} failed, ${stats.chunksHung} hung`],
      ['replicas, encodes', `${stats.replicasReady}, ${stats.encodes}`],
      ['snapshots', String(stats.snapshots)],
      ['stale reports', String(stats.staleReports)],
      ['crashes', String(stats.crashesReported)],
      ['commands', countsOf(stats.commands)],
      ['errors', countsOf(stats.errors)],
    ];
    if (Object.keys(stats.unsupportedCommands).length > 0) {
      rows.push(['not supported', countsOf(stats.unsupportedCommands)]);
    }
    const keyWidth = Math.max(...rows.map(([key]) => key.length));
    const valueWidth = Math.max(...rows.map(([, value]) => value.length));
    const rule = `+-${'-'.repeat(keyWidth)}-+-${'-'.repeat(valueWidth)}-+`;
    const body = rows.map(([key, value]) => `| ${key.padEnd(keyWidth)} | ${value.padEnd(valueWidth)} |`);
    return [rule, ...body, rule].join('\n');
  }
}
