// Render jobs as users submit them over REST, and what the job tests read back afterwards: a
// wallet's balance, a job's refunds, and everything a refused request must leave alone.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { ServiceClient, TestApp } from './app.ts';

/** A render as POST /v1/renders answers it. */
export type SubmittedRender = { id: string; paid_price_minor: number } & Record<string, any>;

/** HD High 30 fps 10 s, Cash: list price 50, 300 frames, of a saved project nobody synced. */
export const renderBody = (overrides: Record<string, unknown> = {}) => ({
  saved_project_id: randomUUID(),
  quality: 'High',
  resolution: 'HD',
  frame_rate: 30,
  duration_sec: 10,
  ...overrides,
});

/** Overrides for a Free render (HD Low, 30 fps): no money needed. */
export const FREE_RENDER = { quality: 'Low', price_type: 'Free' } as const;

/** A render submitted over REST (renderBody with the overrides), which must be accepted; the job as answered. */
export async function submitRender(client: ServiceClient, token: string, overrides: Record<string, unknown> = {}): Promise<SubmittedRender> {
  const response = await client.rest('POST', '/v1/renders', { token, body: renderBody(overrides) });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

/** A line for the job log, for moves made through the job service. */
export const info = (message: string) => ({ level: 'info' as const, message });

export async function balanceOf(t: TestApp, userId: string): Promise<number> {
  const wallet = await t.app.services.db.prisma.wallet.findUnique({ where: { userId } });
  return Number(wallet?.balanceMinor ?? 0n);
}

export function refundsOf(t: TestApp, jobId: string) {
  return t.app.services.db.prisma.ledgerEntry.findMany({ where: { renderJobId: jobId, kind: 'Refund' } });
}

/** Everything a refused request about a job must leave alone: the job, its chunks, log and commands, and its owner's money. */
export async function jobStateOf(t: TestApp, jobId: string, userId: string) {
  const db = t.app.services.db.prisma;
  const [job, frameJobs, entries, logs, balance, commands, jobCount] = await Promise.all([
    db.renderJob.findUniqueOrThrow({ where: { id: jobId } }),
    db.frameJob.findMany({ where: { renderJobId: jobId }, orderBy: { orderValue: 'asc' }, select: { status: true, nodeId: true } }),
    db.ledgerEntry.count({ where: { userId } }),
    db.jobLog.count({ where: { renderJobId: jobId } }),
    balanceOf(t, userId),
    db.nodeCommand.count({ where: { renderJobId: jobId } }),
    db.renderJob.count({ where: { userId } }),
  ]);
  return {
    step: job.step,
    cancelReason: job.cancelReason,
    refundedMinor: job.refundedMinor,
    updatedAt: job.updatedAt.toISOString(),
    frameJobs,
    entries,
    logs,
    balance,
    commands,
    jobCount,
  };
}

/** Everything a refused submission must leave alone: the user's jobs and money, the job logs and the discount codes. */
export async function submissionStateOf(t: TestApp, userId: string) {
  const db = t.app.services.db.prisma;
  const [jobs, entries, logs, walletRow, discounts] = await Promise.all([
    db.renderJob.count({ where: { userId } }),
    db.ledgerEntry.count({ where: { userId } }),
    db.jobLog.count(),
    db.wallet.findUnique({ where: { userId } }),
    db.discountCode.findMany({ orderBy: { code: 'asc' }, select: { code: true, usedCount: true } }),
  ]);
  return { jobs, entries, logs, balance: walletRow?.balanceMinor ?? null, discounts };
}
