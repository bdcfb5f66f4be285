// The job state machine through the job service and the cancel door: invalid moves refused
// with the current step and nothing changed, the valid path with its two fallbacks, terminal
// steps, and a cancel racing a move or a failure ending the job once, refunded once.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidStateError, NotFoundError } from '../../src/domain/errors.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { balanceOf, info, jobStateOf, refundsOf, submitRender } from '../support/jobs.ts';

let t: TestApp;
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
});
afterAll(() => t?.close());

describe('the state machine through the service', () => {
  it('refuses an invalid move with InvalidStateError naming the current step, changing nothing', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const before = await jobStateOf(t, job.id, user.id);
    const move = jobs().move(job.id, { to: 'Completed', log: info('Done?') });
    await expect(move).rejects.toBeInstanceOf(InvalidStateError);
    await expect(jobs().move(job.id, { to: 'Completed', log: info('Done?') })).rejects.toThrow(
      `Render job ${job.id} is Queued; it cannot become Completed`,
    );
    await expect(jobs().move(job.id, { to: 'Rendering', log: info('Skip ahead') })).rejects.toMatchObject({
      code: 'INVALID_STATE',
      details: { step: 'Queued', requested_step: 'Rendering' },
    });
    expect(await jobStateOf(t, job.id, user.id)).toEqual(before);
    await expect(jobs().move(randomUUID(), { to: 'Preparing', log: info('ghost') })).rejects.toBeInstanceOf(NotFoundError);

    // The valid path, and the two fallbacks.
    await jobs().move(job.id, { to: 'Preparing', log: info('p') });
    await jobs().move(job.id, { to: 'Queued', log: info('node lost') });
    await jobs().move(job.id, { to: 'Preparing', log: info('p again') });
    await jobs().move(job.id, { to: 'Rendering', log: info('r') });
    await jobs().move(job.id, { to: 'Encoding', log: info('e') });
    await jobs().move(job.id, { to: 'Rendering', log: info('missing frames') });
    await jobs().move(job.id, { to: 'Encoding', log: info('e again') });
    const done = await jobs().move(job.id, { to: 'Completed', log: info('done') });
    expect(done.step).toBe('Completed');
    expect(done.startedAt).not.toBeNull();
    expect(done.completedAt).not.toBeNull();
    // Terminal: nothing moves it any more, neither cancel nor fail.
    await expect(jobs().move(job.id, { to: 'Rendering', log: info('again') })).rejects.toBeInstanceOf(InvalidStateError);
    await expect(jobs().fail(job.id, 'late')).rejects.toBeInstanceOf(InvalidStateError);
    const cancel = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.details.step).toBe('Completed');
    expect(await refundsOf(t, job.id)).toEqual([]);
  });

  it('serializes a cancel racing a move: the job ends Cancelled, refunded once', async () => {
    for (let round = 0; round < 4; round++) {
      const user = await t.user(1000);
      const job = await submitRender(t, user.token);
      const [cancel, move] = await Promise.allSettled([
        t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token }),
        jobs().move(job.id, { to: 'Preparing', log: info('Preparing') }),
      ]);
      expect(cancel.status).toBe('fulfilled');
      if (cancel.status === 'fulfilled') expect(cancel.value.status).toBe(200);
      if (move.status === 'rejected') {
        // The cancel came first: the move found the job Cancelled.
        expect(move.reason).toBeInstanceOf(InvalidStateError);
        expect((move.reason as InvalidStateError).details.step).toBe('Cancelled');
      }
      const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
      expect(stored.step).toBe('Cancelled');
      expect((await refundsOf(t, job.id)).map((entry) => entry.amountMinor)).toEqual([50n]);
      expect(await balanceOf(t, user.id)).toBe(1000);
      const messages = (await prisma().jobLog.findMany({ where: { renderJobId: job.id }, orderBy: { id: 'asc' } })).map((l) => l.message);
      expect(messages).toEqual(
        move.status === 'fulfilled'
          ? ['Job queued', 'Preparing', 'Job cancelled: Cancelled by the user']
          : ['Job queued', 'Job cancelled: Cancelled by the user'],
      );
    }
  });

  it('lets exactly one of a cancel and a failure racing each other end the job, refunding once', async () => {
    for (let round = 0; round < 4; round++) {
      const user = await t.user(1000);
      const job = await submitRender(t, user.token);
      const [cancel, fail] = await Promise.allSettled([
        t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token }),
        jobs().fail(job.id, 'node died'),
      ]);
      const cancelled = cancel.status === 'fulfilled' && cancel.value.status === 200;
      const failed = fail.status === 'fulfilled';
      expect([cancelled, failed].filter(Boolean)).toHaveLength(1);
      if (!cancelled) expect(cancel.status === 'fulfilled' && cancel.value.status).toBe(409);
      if (!failed) expect((fail as PromiseRejectedResult).reason).toBeInstanceOf(InvalidStateError);
      const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
      expect(stored.step).toBe(cancelled ? 'Cancelled' : 'Failed');
      expect(await refundsOf(t, job.id)).toHaveLength(1);
      expect(await balanceOf(t, user.id)).toBe(1000);
    }
  });
});
