// Pure units of the job lifecycle: the state machine's table, the chunking rule and progress (the
// cancel refund is priced in billing: test/billing/pricing.test.ts). No database, no server.
import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../../src/domain/errors.ts';
import {
  CHUNKS_PER_NODE,
  chunkSizeFor,
  cutRange,
  type FrameRange,
  MAX_CHUNK_FRAMES,
  MIN_CHUNK_FRAMES,
  recutRanges,
  runsOf,
  SPLIT_FACTOR,
  splitSizeFor,
} from '../../src/domain/jobs/chunking.ts';
import { type ProgressFacts, progressOf, RATE_WINDOW_MS, rateWindowStart } from '../../src/domain/jobs/progress.ts';
import { canMove, invalidMove, stepsBefore, TERMINAL_STEPS, TRANSITIONS } from '../../src/domain/jobs/state-machine.ts';
import { JobStep } from '../../src/generated/prisma/enums.ts';
import { HTTP_STATUS } from '../../src/transport/errors.ts';

const ALL_STEPS = Object.values(JobStep);
const LIVE_STEPS = ALL_STEPS.filter((step) => !TERMINAL_STEPS.includes(step));

describe('the job state machine', () => {
  it('has a row for every step and names only real steps', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...ALL_STEPS].sort());
    for (const targets of Object.values(TRANSITIONS)) {
      for (const target of targets) expect(ALL_STEPS).toContain(target);
    }
  });

  it('treats Completed, Failed and Cancelled as terminal, with no move out', () => {
    expect([...TERMINAL_STEPS].sort()).toEqual(['Cancelled', 'Completed', 'Failed']);
    for (const step of TERMINAL_STEPS) {
      expect(TRANSITIONS[step]).toEqual([]);
      for (const to of ALL_STEPS) expect(canMove(step, to)).toBe(false);
    }
  });

  it('lets every step that is not terminal be cancelled or failed', () => {
    expect(LIVE_STEPS.sort()).toEqual(['Encoding', 'Preparing', 'Queued', 'Rendering']);
    for (const step of LIVE_STEPS) {
      expect(canMove(step, 'Cancelled'), step).toBe(true);
      expect(canMove(step, 'Failed'), step).toBe(true);
    }
  });

  it('moves forward one step at a time, with the two documented fallbacks', () => {
    expect(TRANSITIONS.Queued).toEqual(expect.arrayContaining(['Preparing']));
    expect(TRANSITIONS.Preparing).toEqual(expect.arrayContaining(['Rendering', 'Queued']));
    expect(TRANSITIONS.Rendering).toEqual(expect.arrayContaining(['Encoding']));
    expect(TRANSITIONS.Encoding).toEqual(expect.arrayContaining(['Completed', 'Rendering']));
    // No skipping ahead, no standing still.
    expect(canMove('Queued', 'Rendering')).toBe(false);
    expect(canMove('Queued', 'Completed')).toBe(false);
    expect(canMove('Preparing', 'Encoding')).toBe(false);
    expect(canMove('Rendering', 'Completed')).toBe(false);
    expect(canMove('Rendering', 'Queued')).toBe(false);
    for (const step of ALL_STEPS) expect(canMove(step, step), step).toBe(false);
  });

  it('reaches Completed from Queued, and every step from Queued', () => {
    const reached = new Set<JobStep>(['Queued']);
    const queue: JobStep[] = ['Queued'];
    while (queue.length > 0) {
      for (const next of TRANSITIONS[queue.shift()!]) {
        if (!reached.has(next)) {
          reached.add(next);
          queue.push(next);
        }
      }
    }
    expect([...reached].sort()).toEqual([...ALL_STEPS].sort());
  });

  it('stepsBefore answers exactly the steps that may move to the target', () => {
    expect(stepsBefore('Queued')).toEqual(['Preparing']);
    expect(stepsBefore('Preparing')).toEqual(['Queued']);
    expect(stepsBefore('Rendering').sort()).toEqual(['Encoding', 'Preparing']);
    expect(stepsBefore('Encoding')).toEqual(['Rendering']);
    expect(stepsBefore('Completed')).toEqual(['Encoding']);
    expect(stepsBefore('Cancelled').sort()).toEqual(['Encoding', 'Preparing', 'Queued', 'Rendering']);
    expect(stepsBefore('Failed').sort()).toEqual(['Encoding', 'Preparing', 'Queued', 'Rendering']);
    for (const to of ALL_STEPS) {
      for (const from of stepsBefore(to)) expect(TRANSITIONS[from]).toContain(to);
      for (const from of ALL_STEPS.filter((step) => !stepsBefore(to).includes(step))) expect(canMove(from, to)).toBe(false);
    }
  });

  it('invalidMove is a 409 INVALID_STATE naming the current step and what it allows', () => {
    const error = invalidMove('job-1', 'Queued', 'Completed');
    expect(error).toBeInstanceOf(InvalidStateError);
    expect(HTTP_STATUS[error.code]).toBe(409);
    expect(error.code).toBe('INVALID_STATE');
    expect(error.message).toBe('Render job job-1 is Queued; it cannot become Completed');
    expect(error.details).toEqual({
      job_id: 'job-1',
      step: 'Queued',
      requested_step: 'Completed',
      allowed_steps: ['Preparing', 'Failed', 'Cancelled'],
    });
    expect(invalidMove('job-2', 'Cancelled', 'Cancelled').details.allowed_steps).toEqual([]);
  });
});

describe('chunkSizeFor', () => {
  it('keeps the documented constants', () => {
    expect({ CHUNKS_PER_NODE, MIN_CHUNK_FRAMES, MAX_CHUNK_FRAMES }).toEqual({ CHUNKS_PER_NODE: 2, MIN_CHUNK_FRAMES: 10, MAX_CHUNK_FRAMES: 300 });
  });

  it('aims at two chunks per node for a medium job (10 s at 30 fps = 300 frames)', () => {
    // No node at all counts as one: the job still gets chunks to wait with.
    expect(chunkSizeFor(300, 0)).toBe(150);
    expect(chunkSizeFor(300, 1)).toBe(150);
    expect(chunkSizeFor(300, 10)).toBe(15);
    // Too many nodes: the minimum chunk wins.
    expect(chunkSizeFor(300, 1000)).toBe(MIN_CHUNK_FRAMES);
    // 60 s at 30 fps.
    expect(chunkSizeFor(1800, 1)).toBe(MAX_CHUNK_FRAMES);
    expect(chunkSizeFor(1800, 10)).toBe(90);
    expect(chunkSizeFor(1800, 1000)).toBe(MIN_CHUNK_FRAMES);
    // Rounded up: 301 frames over 2 chunks.
    expect(chunkSizeFor(301, 1)).toBe(151);
  });

  it('makes a tiny job one chunk, whatever the fleet', () => {
    for (const nodes of [0, 1, 10, 1000]) {
      expect(chunkSizeFor(1, nodes)).toBe(1);
      expect(chunkSizeFor(5, nodes)).toBe(5);
      expect(chunkSizeFor(MIN_CHUNK_FRAMES, nodes)).toBe(MIN_CHUNK_FRAMES);
      expect(cutRange({ startFrame: 0, endFrame: 4 }, chunkSizeFor(5, nodes))).toEqual([{ startFrame: 0, endFrame: 4 }]);
    }
    // A degenerate empty job still gets a usable (positive) size.
    expect(chunkSizeFor(0, 3)).toBe(1);
  });

  it('caps a one-hour 60 fps job (216 000 frames) at the maximum chunk unless the fleet is huge', () => {
    const frames = 3600 * 60;
    expect(chunkSizeFor(frames, 0)).toBe(MAX_CHUNK_FRAMES);
    expect(chunkSizeFor(frames, 1)).toBe(MAX_CHUNK_FRAMES);
    expect(chunkSizeFor(frames, 10)).toBe(MAX_CHUNK_FRAMES);
    // 216 000 / 2000 = 108.
    expect(chunkSizeFor(frames, 1000)).toBe(108);
    expect(cutRange({ startFrame: 0, endFrame: frames - 1 }, chunkSizeFor(frames, 1))).toHaveLength(720);
  });

  it('stays within MIN and MAX for any job of at least MIN frames, and never exceeds the job', () => {
    for (const frames of [1, 2, 9, 10, 11, 59, 60, 299, 300, 301, 599, 600, 601, 7200, 216_000]) {
      for (const nodes of [0, 1, 2, 3, 7, 10, 50, 1000]) {
        const size = chunkSizeFor(frames, nodes);
        expect(Number.isInteger(size)).toBe(true);
        expect(size).toBeGreaterThanOrEqual(1);
        expect(size).toBeLessThanOrEqual(frames);
        expect(size).toBeLessThanOrEqual(MAX_CHUNK_FRAMES);
        if (frames >= MIN_CHUNK_FRAMES) expect(size).toBeGreaterThanOrEqual(MIN_CHUNK_FRAMES);
        else expect(size).toBe(frames);
      }
    }
  });

  it('never makes chunks larger with more nodes', () => {
    for (const frames of [30, 300, 3000, 216_000]) {
      let previous = Number.POSITIVE_INFINITY;
      for (const nodes of [1, 2, 4, 8, 16, 64, 512]) {
        const size = chunkSizeFor(frames, nodes);
        expect(size).toBeLessThanOrEqual(previous);
        previous = size;
      }
    }
  });
});

describe('cutRange', () => {
  function coverage(range: FrameRange, chunks: FrameRange[]): Map<number, number> {
    const seen = new Map<number, number>();
    for (const chunk of chunks) {
      for (let frame = chunk.startFrame; frame <= chunk.endFrame; frame++) seen.set(frame, (seen.get(frame) ?? 0) + 1);
    }
    return seen;
  }

  it('covers every frame exactly once, in order, with chunks of the size asked (the last may be shorter)', () => {
    const cases: [FrameRange, number][] = [
      [{ startFrame: 0, endFrame: 0 }, 1],
      [{ startFrame: 0, endFrame: 9 }, 10],
      [{ startFrame: 0, endFrame: 299 }, 150],
      [{ startFrame: 0, endFrame: 300 }, 150],
      [{ startFrame: 0, endFrame: 191 }, 96],
      [{ startFrame: 0, endFrame: 999 }, 7],
      [{ startFrame: 17, endFrame: 123 }, 10],
      [{ startFrame: 5, endFrame: 5 }, 300],
      [{ startFrame: 0, endFrame: 215_999 }, 300],
    ];
    for (const [range, size] of cases) {
      const chunks = cutRange(range, size);
      const seen = coverage(range, chunks);
      const length = range.endFrame - range.startFrame + 1;
      expect(seen.size).toBe(length);
      let wrong = 0;
      for (let frame = range.startFrame; frame <= range.endFrame; frame++) if (seen.get(frame) !== 1) wrong++;
      expect(wrong).toBe(0);
      expect(chunks.length).toBe(Math.ceil(length / size));
      expect(chunks[0]!.startFrame).toBe(range.startFrame);
      expect(chunks.at(-1)!.endFrame).toBe(range.endFrame);
      const misshapen = chunks.filter((chunk, index) => {
        const chunkLength = chunk.endFrame - chunk.startFrame + 1;
        const contiguous = index === 0 || chunk.startFrame === chunks[index - 1]!.endFrame + 1;
        const sized = index < chunks.length - 1 ? chunkLength === size : chunkLength >= 1 && chunkLength <= size;
        return !contiguous || !sized;
      });
      expect(misshapen).toEqual([]);
    }
  });

  it('cuts a 10 s 30 fps job in two for one node', () => {
    expect(cutRange({ startFrame: 0, endFrame: 299 }, chunkSizeFor(300, 1))).toEqual([
      { startFrame: 0, endFrame: 149 },
      { startFrame: 150, endFrame: 299 },
    ]);
  });
});

describe('splitSizeFor', () => {
  it('splits a rendering job only when the rule gives at most half the size its chunks were cut to', () => {
    expect(SPLIT_FACTOR).toBe(2);
    // Cut for 1 node (150 frames): 2 nodes give 75, half of it; 9 give 17.
    expect(splitSizeFor(300, 2, 150)).toBe(75);
    expect(splitSizeFor(300, 9, 150)).toBe(17);
    // Cut for 4 nodes (38 frames): 6 nodes give 25, not small enough; 8 give 19, exactly half.
    expect(splitSizeFor(300, 6, 38)).toBeNull();
    expect(splitSizeFor(300, 8, 38)).toBe(19);
    // Fewer nodes than it was cut for: never a merge while rendering.
    expect(splitSizeFor(300, 1, 15)).toBeNull();
    // The same fleet, and a fleet that cannot make the chunks smaller than the minimum.
    expect(splitSizeFor(300, 10, 15)).toBeNull();
    expect(splitSizeFor(300, 1000, 15)).toBeNull();
  });
});

describe('recutRanges', () => {
  it('joins consecutive chunks and cuts them again, splitting or merging, each frame once', () => {
    const halves = cutRange({ startFrame: 0, endFrame: 299 }, 150);
    expect(recutRanges(halves, 100)).toEqual(cutRange({ startFrame: 0, endFrame: 299 }, 100));
    expect(recutRanges(cutRange({ startFrame: 0, endFrame: 299 }, 15), 150)).toEqual(halves);
    // Chunks apart stay apart: frames between them (held by a node) are in none of the new ones.
    const apart = [
      { startFrame: 225, endFrame: 299 },
      { startFrame: 0, endFrame: 74 },
      { startFrame: 150, endFrame: 224 },
    ];
    expect(recutRanges(apart, 40)).toEqual([
      { startFrame: 0, endFrame: 39 },
      { startFrame: 40, endFrame: 74 },
      { startFrame: 150, endFrame: 189 },
      { startFrame: 190, endFrame: 229 },
      { startFrame: 230, endFrame: 269 },
      { startFrame: 270, endFrame: 299 },
    ]);
    expect(recutRanges([], 10)).toEqual([]);
  });
});

describe('runsOf', () => {
  it('groups frame numbers into consecutive inclusive runs, sorted, without duplicates', () => {
    expect(runsOf([])).toEqual([]);
    expect(runsOf([7])).toEqual([{ startFrame: 7, endFrame: 7 }]);
    expect(runsOf([5, 3, 4, 10, 11, 1, 3, 4])).toEqual([
      { startFrame: 1, endFrame: 1 },
      { startFrame: 3, endFrame: 5 },
      { startFrame: 10, endFrame: 11 },
    ]);
    expect(runsOf([0, 2, 4])).toEqual([
      { startFrame: 0, endFrame: 0 },
      { startFrame: 2, endFrame: 2 },
      { startFrame: 4, endFrame: 4 },
    ]);
    // Numeric, not lexicographic, order.
    expect(runsOf([100, 99, 9, 10])).toEqual([
      { startFrame: 9, endFrame: 10 },
      { startFrame: 99, endFrame: 100 },
    ]);
  });

  it('is the inverse of cutRange over the frames it covers', () => {
    const frames = cutRange({ startFrame: 40, endFrame: 139 }, 13).flatMap((chunk) =>
      Array.from({ length: chunk.endFrame - chunk.startFrame + 1 }, (_, i) => chunk.startFrame + i),
    );
    expect(runsOf(frames.reverse())).toEqual([{ startFrame: 40, endFrame: 139 }]);
  });
});

describe('progressOf', () => {
  const now = new Date('2030-01-01T12:00:00.000Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const facts = (overrides: Partial<Omit<ProgressFacts, 'job'>> & { job?: Partial<ProgressFacts['job']> } = {}): ProgressFacts => ({
    framesRendered: 0,
    recentFrames: 0,
    renderingSince: null,
    activeNodes: 0,
    message: null,
    now,
    ...overrides,
    job: { id: 'job-1', step: 'Queued', totalFrames: 300, imagePreviewB64: null, ...overrides.job },
  });

  it('answers every field for a queued job, which has 0 frames done', () => {
    expect(progressOf(facts({ message: 'Job queued' }))).toEqual({
      jobId: 'job-1',
      step: 'Queued',
      progress: 0,
      currentFrame: 0,
      totalFrames: 300,
      etaSeconds: null,
      previewB64: null,
      activeNodes: 0,
      message: 'Job queued',
    });
  });

  it('counts the frames done, whichever they are, and rounds their share down, capped at 99 until Completed', () => {
    const rendering = { step: 'Rendering' as const };
    expect(progressOf(facts({ job: rendering, framesRendered: 1 }))).toMatchObject({ currentFrame: 1, progress: 0 });
    expect(progressOf(facts({ job: rendering, framesRendered: 60 }))).toMatchObject({ currentFrame: 60, progress: 20 });
    expect(progressOf(facts({ job: rendering, framesRendered: 299 }))).toMatchObject({ currentFrame: 299, progress: 99 });
    expect(progressOf(facts({ job: rendering, framesRendered: 300 }))).toMatchObject({ currentFrame: 300, progress: 99 });
    expect(progressOf(facts({ job: { step: 'Encoding' }, framesRendered: 300 }))).toMatchObject({ currentFrame: 300, progress: 99 });
    expect(progressOf(facts({ job: { step: 'Cancelled' }, framesRendered: 300 })).progress).toBe(99);
    expect(progressOf(facts({ job: { totalFrames: 0 } }))).toMatchObject({ currentFrame: 0, progress: 0 });
  });

  it('estimates the time left only while Rendering, at the rate frames completed within the window', () => {
    const rendering = { job: { step: 'Rendering' as const }, framesRendered: 100 };
    // 120 frames in the last 60 s: 200 left take 100 s, however long the job queued before.
    expect(progressOf(facts({ ...rendering, recentFrames: 120, renderingSince: ago(3_600_000) })).etaSeconds).toBe(100);
    // Chunks went out 10 s ago: 20 frames in those 10 s, not in the whole window.
    expect(progressOf(facts({ ...rendering, recentFrames: 20, renderingSince: ago(10_000) })).etaSeconds).toBe(100);
    // Rounded up: 7 frames in 60 s, 200 left = 1714.29 s.
    expect(progressOf(facts({ ...rendering, recentFrames: 7, renderingSince: ago(600_000) })).etaSeconds).toBe(1715);
    expect(RATE_WINDOW_MS).toBe(60_000);
    expect(rateWindowStart(now)).toEqual(ago(RATE_WINDOW_MS));
    // No frame completed within the window, no chunk assigned, or no time passed: unknown.
    expect(progressOf(facts({ ...rendering, recentFrames: 0, renderingSince: ago(10_000) })).etaSeconds).toBeNull();
    expect(progressOf(facts({ ...rendering, recentFrames: 20, renderingSince: null })).etaSeconds).toBeNull();
    expect(progressOf(facts({ ...rendering, recentFrames: 20, renderingSince: now })).etaSeconds).toBeNull();
    for (const step of ['Queued', 'Preparing', 'Encoding', 'Failed', 'Cancelled'] as const) {
      expect(progressOf(facts({ ...rendering, job: { step }, recentFrames: 20, renderingSince: ago(10_000) })).etaSeconds, step).toBeNull();
    }
  });

  it('answers total/total, 100 and eta 0 once Completed, and passes the other facts through', () => {
    const done = progressOf(
      facts({
        job: { step: 'Completed', imagePreviewB64: 'aW1n' },
        framesRendered: 0,
        activeNodes: 3,
        message: 'Job completed',
      }),
    );
    expect(done).toEqual({
      jobId: 'job-1',
      step: 'Completed',
      progress: 100,
      currentFrame: 300,
      totalFrames: 300,
      etaSeconds: 0,
      previewB64: 'aW1n',
      activeNodes: 3,
      message: 'Job completed',
    });
  });
});
