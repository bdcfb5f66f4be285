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
