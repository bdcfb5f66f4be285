// A job's progress as callers see it, derived from its frame records. Pure, so the REST
// polling endpoint, the GraphQL query and the subscriptions answer the same numbers.
import { JobStep, type RenderJob } from '../../generated/prisma/client.ts';

export interface RenderProgress {
  jobId: string;
  step: JobStep;
  /** Percent of frames rendered; 100 only once the job is Completed. */
  progress: number;
  currentFrame: number | null;
  totalFrames: number | null;
  etaSeconds: number | null;
  previewB64: string | null;
  activeNodes: number;
  message: string | null;
}

export interface ProgressFacts {
  job: Pick<RenderJob, 'id' | 'step' | 'totalFrames' | 'startedAt' | 'imagePreviewB64'>;
  framesRendered: number;
  currentFrame: number | null;
  activeNodes: number;
  message: string | null;
  now: Date;
}

export function progressOf({ job, framesRendered, currentFrame, activeNodes, message, now }: ProgressFacts): RenderProgress {
  const completed = job.step === JobStep.Completed;
  const share = job.totalFrames > 0 ? Math.floor((framesRendered * 100) / job.totalFrames) : 0;
  return {
    jobId: job.id,
    step: job.step,
    // Rendered frames still have to be encoded, so a job is not 100% before it is Completed.
    progress: completed ? 100 : Math.min(99, share),
    currentFrame,
    totalFrames: job.totalFrames,
    etaSeconds: completed ? 0 : etaSeconds(job, framesRendered, now),
    previewB64: job.imagePreviewB64,
    activeNodes,
    message,
  };
}

/** The remaining frames at the rate the job has rendered so far; unknown before the first frame. */
function etaSeconds(job: ProgressFacts['job'], framesRendered: number, now: Date): number | null {
  if (job.step !== JobStep.Rendering || framesRendered === 0 || !job.startedAt) return null;
  const elapsedSeconds = (now.getTime() - job.startedAt.getTime()) / 1000;
  if (elapsedSeconds <= 0) return null;
  return Math.ceil(((job.totalFrames - framesRendered) * elapsedSeconds) / framesRendered);
}
