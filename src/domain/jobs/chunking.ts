// How a job is cut into chunks (frame jobs) of consecutive frames.
//
// The rule: aim for CHUNKS_PER_NODE chunks per node that can take work, so that every node gets
// some and a slow node holds back at most a small share; then keep each chunk between
// MIN_CHUNK_FRAMES (below that, opening the project and warming After Effects costs more than
// rendering) and MAX_CHUNK_FRAMES (above that, a crash throws away too much work and progress
// arrives in coarse steps). A job shorter than MIN_CHUNK_FRAMES is one chunk.
//
// When: a job is cut when it is created, for the nodes available then. Its chunks that no node was
// ever handed are cut again (src/domain/work/recut.ts) for the nodes available later: when its
// rendering starts (its replica is ready), to the size the rule gives then, larger or smaller, as
// the fleet may have changed while it queued; and in each scheduling pass, before placement, when
// the nodes that can take it grew so much that the rule's size is at most 1/SPLIT_FACTOR of the
// size its chunks were cut to (splitSizeFor). While it renders chunks are only split, never merged:
// a merge puts no idle node to work, and nodes parked for a moment would merge and split every
// rendering job's chunks. "Available" is node-status.ts's rule, among nodes that run the job's
// After Effects version. A chunk a node holds or held is never cut again, so a range with failed
// attempts keeps its count: it is neither merged with fresh frames nor split.
//
// Frames are numbered from 0; a chunk's range is inclusive at both ends.

/** The longest render, in seconds: a job has at most 216,000 frames (an hour at 60 fps). */
export const MAX_DURATION_SEC = 3600;
export const CHUNKS_PER_NODE = 2;
export const MIN_CHUNK_FRAMES = 10;
export const MAX_CHUNK_FRAMES = 300;
/** How many times smaller than a rendering job's chunks the rule's size must be for a pass to split them. */
export const SPLIT_FACTOR = 2;

export interface FrameRange {
  startFrame: number;
  endFrame: number;
}

export function chunkSizeFor(totalFrames: number, availableNodes: number): number {
  const target = Math.ceil(totalFrames / (Math.max(1, availableNodes) * CHUNKS_PER_NODE));
  return Math.max(1, Math.min(totalFrames, Math.max(MIN_CHUNK_FRAMES, Math.min(MAX_CHUNK_FRAMES, target))));
}

/**
 * The size to split a rendering job's chunks that were cut to `cutSize` frames into, now that
 * `availableNodes` nodes can take it; null while the fleet has not grown enough.
 */
export function splitSizeFor(totalFrames: number, availableNodes: number, cutSize: number): number | null {
  const size = chunkSizeFor(totalFrames, availableNodes);
  return size * SPLIT_FACTOR <= cutSize ? size : null;
}

export function cutRange(range: FrameRange, chunkSize: number): FrameRange[] {
  const chunks: FrameRange[] = [];
  for (let start = range.startFrame; start <= range.endFrame; start += chunkSize) {
    chunks.push({ startFrame: start, endFrame: Math.min(range.endFrame, start + chunkSize - 1) });
  }
  return chunks;
}

/** The frames of these chunks cut again into chunks of `chunkSize`: consecutive chunks are joined first, so they can merge. */
export function recutRanges(chunks: readonly FrameRange[], chunkSize: number): FrameRange[] {
  return joined(chunks).flatMap((run) => cutRange(run, chunkSize));
}

/** Consecutive runs of the given frame numbers, e.g. the frames a dead chunk left unrendered. */
export function runsOf(frames: number[]): FrameRange[] {
  return joined(frames.map((frame) => ({ startFrame: frame, endFrame: frame })));
}

/** The ranges in order, those that touch or overlap joined into one. */
function joined(ranges: readonly FrameRange[]): FrameRange[] {
  const runs: FrameRange[] = [];
  for (const { startFrame, endFrame } of [...ranges].sort((a, b) => a.startFrame - b.startFrame)) {
    const last = runs.at(-1);
    if (last && last.endFrame >= startFrame - 1) last.endFrame = Math.max(last.endFrame, endFrame);
    else runs.push({ startFrame, endFrame });
  }
  return runs;
}
