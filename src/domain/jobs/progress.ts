// A job's progress as callers see it, derived from its frame records. Pure, so the REST
// polling endpoint, the GraphQL query and the subscriptions answer the same numbers.
import { JobStep, type RenderJob } from '../../generated/prisma/client.ts';

/**
 * How far back the frame rate behind the ETA looks. The rate since submission would count the
 * time the job queued and its replica was prepared, when no frame could render (the first ETA of
 * a 15 s render read 361 s), and would answer slowly when nodes join or leave; a recent window
 * follows the rate the fleet renders at now. A minute holds enough frames to be steady even for
 * a node taking seconds a frame.
 */
export const RATE_WINDOW_MS = 60_000;

export interface RenderProgress {
  jobId: string;
  step: JobStep;
  /** Percent of frames rendered; 100 only once the job is Completed. */
  progress: number;
  /** How many frames are rendered (not the number of a frame): 0 at first, totalFrames once Completed. */
  currentFrame: number | null;
  totalFrames: number | null;
  etaSeconds: number | null;
  previewB64: string | null;
  activeNodes: number;
  message: string | null;
}

export interface ProgressFacts {
  job: Pick<RenderJob, 'id' | 'step' | 'totalFrames' | 'imagePreviewB64'>;
  framesRendered: number;
  /** Frames whose rendering completed after rateWindowStart(now). */
  recentFrames: number;
  /** When the job's first chunk went to a node: before that no frame could render. */
  renderingSince: Date | null;
  activeNodes: number;
  message: string | null;
  now: Date;
}

/** Frames completed after this moment make up the recent rate. */
export function rateWindowStart(now: Date): Date {
  return new Date(now.getTime() - RATE_WINDOW_MS);
}

/** How many of the job's frames count as done: all of them once it is Completed. */
function framesDone(job: Pick<RenderJob, 'step' | 'totalFrames'>, framesRendered: number): number {
  return job.step === JobStep.Completed ? job.totalFrames : Math.min(framesRendered, job.totalFrames);
}

/**
 * Percent of the job's frames rendered. Rendered frames still have to be encoded, so a job is not
 * 100% before it is Completed. Every door's percent (a job's render_progress, its progress
 * answers and events) is this one.
 */
export function percentDone(job: Pick<RenderJob, 'step' | 'totalFrames' | 'framesRendered'>): number {
  if (job.step === JobStep.Completed) return 100;
  const share = job.totalFrames > 0 ? Math.floor((framesDone(job, job.framesRendered) * 100) / job.totalFrames) : 0;
  return Math.min(99, share);
}

export function progressOf({ job, framesRendered, recentFrames, renderingSince, activeNodes, message, now }: ProgressFacts): RenderProgress {
  const completed = job.step === JobStep.Completed;
  const done = framesDone(job, framesRendered);
  return {
    jobId: job.id,
    step: job.step,
    progress: percentDone({ ...job, framesRendered }),
    currentFrame: done,
    totalFrames: job.totalFrames,
    etaSeconds: completed ? 0 : etaSeconds(job, job.totalFrames - done, recentFrames, renderingSince, now),
    previewB64: job.imagePreviewB64,
    activeNodes,
    message,
  };
}

/**
 * The frames left at the recent rate: the frames completed within the window over the window's
 * length, the window starting no earlier than the first chunk's assignment. Unknown while no
 * frame completed within it.
 */
function etaSeconds(job: ProgressFacts['job'], left: number, recentFrames: number, renderingSince: Date | null, now: Date): number | null {
  if (job.step !== JobStep.Rendering || recentFrames === 0 || !renderingSince) return null;
  const windowStart = Math.max(rateWindowStart(now).getTime(), renderingSince.getTime());
  const seconds = (now.getTime() - windowStart) / 1000;
  if (seconds <= 0) return null;
  return Math.ceil((left * seconds) / recentFrames);
}
