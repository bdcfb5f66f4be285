// The subscribers of one job on a replica share the job's feed (one bus subscription, one reorder
// buffer, one tail-watch entry). Whenever each joins, from the current state or resuming after a
// seq, and whatever the bus does meanwhile (events late, out of order, lost, the last one lost),
// each gets every event after its start exactly once and in order, up to the terminal one.
import { describe, expect, it } from 'vitest';
import { createRandom } from '../../agent-sim/random.ts';
import { createMemoryBus } from '../../src/adapters/bus/memory-bus.ts';
import { type JobEvent, publishJobEvents, topics } from '../../src/domain/events.ts';
import { followProgress, type SequencedProgress, tailWatch } from '../../src/domain/jobs/job-events.ts';

const JOB = '6f1c1d8e-5d4f-4a53-9a0e-2b4f3f6a7c10';
const EVENTS = 40;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function eventOf(seq: number): JobEvent {
  const step = seq === EVENTS ? 'Completed' : 'Rendering';
  return {
    jobId: JOB,
    userId: JOB,
    step,
    seq,
    progress: {
      jobId: JOB,
      step,
      progress: seq,
      currentFrame: seq,
      totalFrames: EVENTS,
      etaSeconds: null,
      previewB64: seq % 10 === 0 ? `preview ${seq}` : null,
      activeNodes: 1,
      message: `change ${seq}`,
    },
  };
}

/** One schedule: commits with publishes late, out of order or lost; subscribers joining throughout. */
async function run(seed: number) {
  // Seeded, so that a failing schedule can be run again.
  const next = createRandom(seed);
  const bus = createMemoryBus();
  const committed: JobEvent[] = [eventOf(1)];
  const read = async <T>(answer: () => T) => {
    await pause(next() * 4);
    return answer();
  };
  const tail = tailWatch((ids) => read(() => new Map(ids.map((id) => [id, committed.length]))), 20);
  const options = () => ({
    bus,
    topic: topics.renderProgress(JOB),
    jobId: JOB,
    tail,
    gapGraceMs: 15,
    current: () => read(() => committed.at(-1) as JobEvent),
    recorded: (after: number) => read(() => committed.filter((event) => event.seq > after)),
  });

  const subscribers: Array<Promise<{ afterSeq: number | undefined; seqs: number[]; previews: Array<string | null> }>> = [];
  const subscribe = (afterSeq: number | undefined) =>
    subscribers.push(
      (async () => {
        const seqs: number[] = [];
        const previews: Array<string | null> = [];
        for await (const progress of await followProgress({ ...options(), afterSeq })) {
          seqs.push((progress as SequencedProgress).seq);
          previews.push(progress.previewB64);
        }
        return { afterSeq, seqs, previews };
      })(),
    );

  subscribe(undefined);
  const publishing: Array<Promise<void>> = [];
  for (let seq = 2; seq <= EVENTS; seq++) {
    const event = eventOf(seq);
    committed.push(event);
    // Most events are published a little later, some much later (after the ones that follow them),
    // some never: those the feed reads from the record. In every other schedule the last one is
    // lost too, which only the tail watch finds.
    const fate = next();
    const lost = fate < 0.1 || (seq === EVENTS && seed % 2 === 1);
    if (!lost) publishing.push(pause(fate < 0.25 ? 10 + next() * 20 : next() * 3).then(() => publishJobEvents(bus, [event])));
    if (next() < 0.3) subscribe(next() < 0.5 ? undefined : Math.floor(next() * seq));
    await pause(next() * 3);
  }
  await Promise.all(publishing);
  return Promise.all(subscribers);
}

describe('subscribers sharing a job feed', () => {
  it('each get every event after their start once and in order, whenever they join and whatever the bus loses', { timeout: 60_000 }, async () => {
    let checked = 0;
    for (let seed = 1; seed <= 12; seed++) {
      for (const { afterSeq, seqs, previews } of await run(seed)) {
        const first = seqs[0] as number;
        if (afterSeq !== undefined) expect(first, `seed ${seed}`).toBe(afterSeq + 1);
        expect(seqs, `seed ${seed}, after ${afterSeq}`).toEqual(Array.from({ length: EVENTS - first + 1 }, (_, index) => first + index));
        // The preview is carried forward from the last event that set one.
        expect(previews.at(-1)).toBe(`preview ${EVENTS}`);
        checked += seqs.length;
      }
    }
    expect(checked).toBeGreaterThan(EVENTS * 12);
  });
});
