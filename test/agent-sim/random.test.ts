import { describe, expect, it } from 'vitest';
import { between, createRandom, streamSeed } from '../../agent-sim/random.ts';

const draw = (seed: number, count = 5) => {
  const random = createRandom(seed);
  return Array.from({ length: count }, () => random());
};

describe('the simulator randomness', () => {
  it('repeats itself for the same seed and differs between nodes and streams', () => {
    expect(draw(streamSeed(42, 3, 0))).toEqual(draw(streamSeed(42, 3, 0)));
    expect(draw(streamSeed(42, 3, 0))).not.toEqual(draw(streamSeed(42, 4, 0)));
    expect(draw(streamSeed(42, 3, 0))).not.toEqual(draw(streamSeed(42, 3, 1)));
    expect(draw(streamSeed(42, 3, 0))).not.toEqual(draw(streamSeed(43, 3, 0)));
  });

  it('stays in [0, 1) and spreads evenly enough to drive failure rates', () => {
    const values = draw(7, 10_000);
    expect(values.every((value) => value >= 0 && value < 1)).toBe(true);
    const below = values.filter((value) => value < 0.1).length;
    expect(below).toBeGreaterThan(850);
    expect(below).toBeLessThan(1_150);
    const random = createRandom(9);
    const dice = Array.from({ length: 1_000 }, () => between(random, 1, 6));
    expect(new Set(dice)).toEqual(new Set([1, 2, 3, 4, 5, 6]));
  });
});
