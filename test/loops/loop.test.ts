import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLoop } from '../../src/loops/loop.ts';

const logger = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('background loops', () => {
  it('never overlaps passes, survives a failing pass and waits for the pass under way on stop', async () => {
    let active = 0;
    let maxActive = 0;
    let passes = 0;
    const loop = createLoop({
      name: 'test',
      intervalMs: 5,
      logger,
      run: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        passes++;
        await sleep(20);
        active--;
        if (passes === 2) throw new Error('one bad pass');
      },
    });
    loop.start();
    await Promise.all([loop.runOnce(), loop.runOnce()]);
    await sleep(120);
    await loop.stop();
    expect(active).toBe(0);
    expect(maxActive).toBe(1);
    expect(passes).toBeGreaterThanOrEqual(3);
    const after = passes;
    await sleep(50);
    expect(passes).toBe(after);
  });
});
