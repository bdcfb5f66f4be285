// Stand-ins for what After Effects would produce. They live in memory only: the benchmark runs
// thousands of nodes in one process and must not touch the disk.
import { createHash } from 'node:crypto';

/** A valid 1x1 PNG, small enough to ride in every first frame report as the job's preview. */
export const PREVIEW_PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

const PREVIEW_PNG = Buffer.from(PREVIEW_PNG_B64, 'base64');

/**
 * The size of one rendered frame: the preview image padded the way real frames vary. Nodes report
 * it without making the frame, which nobody reads.
 */
export function placeholderFrameSize(padding: number): number {
  return PREVIEW_PNG.length + padding;
}

/** The "encoded video" uploaded for one format: a recognisable header, sized by the frame count. */
export function placeholderOutput(jobId: string, format: string, totalFrames: number): Buffer {
  const header = Buffer.from(`FLATRENDER-AGENT-SIM ${format} ${jobId} ${totalFrames} frames\n`, 'utf8');
  const size = Math.min(64 * 1024, header.length + 1024 + totalFrames * 16);
  const output = Buffer.alloc(size, 0x2e);
  header.copy(output);
  return output;
}

export function replicaOf(jobId: string, lease: string): { path: string; md5: string } {
  return {
    path: `replicas/${jobId}/replica.aep`,
    md5: createHash('md5').update(`${jobId}:${lease}`).digest('hex'),
  };
}

const RESOLUTIONS: Record<string, [number, number]> = {
  HD: [1280, 720],
  FullHD: [1920, 1080],
  TwoK: [2560, 1440],
  FourK: [3840, 2160],
};

export function dimensionsOf(resolution: unknown): { width: number; height: number } {
  const [width, height] = (typeof resolution === 'string' ? RESOLUTIONS[resolution] : undefined) ?? [1920, 1080];
  return { width, height };
}
