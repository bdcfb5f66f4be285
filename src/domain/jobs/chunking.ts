// How a job is cut into chunks (frame jobs) of consecutive frames.
//
// The rule: aim for CHUNKS_PER_NODE chunks per node that can take work, so that every node gets
// some and a slow node holds back at most a small share; then keep each chunk between
// MIN_CHUNK_FRAMES (below that, opening the project and warming After Effects costs more than
// rendering) and MAX_CHUNK_FRAMES (above that, a crash throws away too much work and progress
// arrives in coarse steps). A job shorter than MIN_CHUNK_FRAMES is one chunk.
//
// Frames are numbered from 0; a chunk's range is inclusive at both ends.

/** The longest render, in seconds: a job has at most 216,000 frames (an hour at 60 fps). */
export const MAX_DURATION_SEC = 3600;
export const CHUNKS_PER_NODE = 2;
export const MIN_CHUNK_FRAMES = 10;
export const MAX_CHUNK_FRAMES = 300;

export interface FrameRange {
  startFrame: number;
  endFrame: number;
}

export function chunkSizeFor(totalFrames: number, availableNodes: number): number {
  const target = Math.ceil(totalFrames / (Math.max(1, availableNodes) * CHUNKS_PER_NODE));
  return Math.max(1, Math.min(totalFrames, Math.max(MIN_CHUNK_FRAMES, Math.min(MAX_CHUNK_FRAMES, target))));
}

export function cutRange(range: FrameRange, chunkSize: number): FrameRange[] {
  const chunks: FrameRange[] = [];
  for (let start = range.startFrame; start <= range.endFrame; start += chunkSize) {
    chunks.push({ startFrame: start, endFrame: Math.min(range.endFrame, start + chunkSize - 1) });
  }
  return chunks;
}

/** Consecutive runs of the given frame numbers, e.g. the frames a dead chunk left unrendered. */
export function runsOf(frames: number[]): FrameRange[] {
  const sorted = [...new Set(frames)].sort((a, b) => a - b);
  const runs: FrameRange[] = [];
  for (const frame of sorted) {
    const last = runs.at(-1);
    if (last && last.endFrame === frame - 1) last.endFrame = frame;
    else runs.push({ startFrame: frame, endFrame: frame });
  }
  return runs;
}
