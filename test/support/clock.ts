import type { Clock } from '../../src/ports.ts';

/** A clock the test moves by hand, for timeouts, expiries and retention rules. */
export class ManualClock implements Clock {
  private current: number;

  constructor(start: Date = new Date()) {
    this.current = start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  advance(milliseconds: number): void {
    this.current += milliseconds;
  }
}

/** Real time plus an offset the test moves; tokens and signatures are checked by it too. */
export function controllableClock(): Clock & { advance(ms: number): void; set(date: Date): void; reset(): void } {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance: (ms) => {
      offsetMs += ms;
    },
    set: (date) => {
      offsetMs = date.getTime() - Date.now();
    },
    reset: () => {
      offsetMs = 0;
    },
  };
}
