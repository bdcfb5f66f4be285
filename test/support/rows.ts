// State that no public door can make, written straight into the database: work already done
// without rendering it, times in the past, counters that only long runs of failures raise. The
// tests reach everything else through REST, GraphQL and the signed agent routes; these few
// writes live here, once, so that a test file never writes rows of its own.
import type { Prisma } from '../../src/generated/prisma/client.ts';
import type { TestApp } from './app.ts';

type ChunkHold = 'Assigned' | 'Rendering' | 'Completed';
type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const prisma = (t: TestApp) => t.app.services.db.prisma;

/**
 * The job's first `count` frames rendered, with the job's counter in step, as agents' frame
 * reports leave them: hundreds of reports, each under a lease of a chunk on a node, otherwise.
 */
export async function markRendered(t: TestApp, jobId: string, count: number): Promise<void> {
  const { count: updated } = await prisma(t).frame.updateMany({
    where: { renderJobId: jobId, frameNumber: { lt: count } },
    data: { rendered: true },
  });
  if (updated !== count) throw new Error(`job ${jobId} has ${updated} frames below ${count}`);
  await prisma(t).renderJob.update({ where: { id: jobId }, data: { framesRendered: count } });
}

/** Chunks held by nodes in the given states, without the commands and leases the scheduler would give them. */
export async function holdChunks(t: TestApp, holds: Array<{ chunkId: string; nodeId: string; status: ChunkHold }>): Promise<void> {
  for (const { chunkId, nodeId, status } of holds) {
    await prisma(t).frameJob.update({ where: { id: chunkId }, data: { status, nodeId } });
  }
}

/** A chunk on a later attempt after failures, part of its frames rendered and checked: a long run of agent reports otherwise. */
export async function chunkOnLaterAttempt(
  t: TestApp,
  chunkId: string,
  state: { attempt: number; lastError: string; framesRendered: number; framesValidated: number },
): Promise<void> {
  await prisma(t).frameJob.update({ where: { id: chunkId }, data: state });
}

/** Chunks that name a node without being handed out to it (still Pending), for reads of a chunk's node. */
export async function pointChunksAt(t: TestApp, chunkIds: string[], nodeId: string): Promise<void> {
  await prisma(t).frameJob.updateMany({ where: { id: { in: chunkIds } }, data: { nodeId } });
}

/** A job rendering for a while: its chunks handed out and its rendered frames completed at those times in the past. */
export async function backdateRendering(
  t: TestApp,
  jobId: string,
  times: { startedAt: Date; chunksAssignedAt: Date; framesCompletedAt: Date; previewB64?: string },
): Promise<void> {
  await prisma(t).frameJob.updateMany({ where: { renderJobId: jobId }, data: { assignedAt: times.chunksAssignedAt } });
  await prisma(t).frame.updateMany({ where: { renderJobId: jobId, rendered: true }, data: { completedAt: times.framesCompletedAt } });
  await prisma(t).renderJob.update({ where: { id: jobId }, data: { startedAt: times.startedAt, imagePreviewB64: times.previewB64 ?? null } });
}

/** A job that ended (Cancelled, Failed or Completed) at a time in the past. */
export async function endedAt(t: TestApp, jobId: string, step: 'Cancelled' | 'Failed' | 'Completed', completedAt: Date): Promise<void> {
  await prisma(t).renderJob.update({ where: { id: jobId }, data: { step, completedAt } });
}

/** The job's progress events, as if recorded at `createdAt` (for the retention that prunes old ones). */
export async function backdateJobEvents(t: TestApp, jobId: string, createdAt: Date): Promise<void> {
  await prisma(t).renderJobEvent.updateMany({ where: { renderJobId: jobId }, data: { createdAt } });
}

/** Lines in jobs' logs as nodes' work writes them, at the given times: agents have no route that writes a line. */
export async function logLines(
  t: TestApp,
  lines: Array<{ renderJobId: string; timestamp: Date; level: LogLevel; message: string; nodeId?: string; meta?: Prisma.InputJsonObject }>,
): Promise<void> {
  await prisma(t).jobLog.createMany({ data: lines });
}

/**
 * A command waiting for the node, with a payload of the test's making: the doors queue commands
 * only for real work (the scheduler) or as an admin's action (restart, close-ae).
 */
export function pendingCommand(t: TestApp, nodeId: string, type: string, payload: Record<string, unknown>, leaseToken?: string) {
  return prisma(t).nodeCommand.create({
    data: { nodeId, type: type as never, payload: payload as never, ...(leaseToken ? { leaseToken } : {}) },
  });
}

/** A node that has failed this many times in a row, as a run of crash reports would leave it. */
export async function consecutiveFailures(t: TestApp, nodeId: string, failures: number): Promise<void> {
  await prisma(t).renderNode.update({ where: { id: nodeId }, data: { consecutiveFailures: failures } });
}

/** A chunk on its nth attempt, as that many failures on nodes the job has not blocked would leave it. */
export async function chunkAttempt(t: TestApp, chunkId: string, attempt: number): Promise<void> {
  await prisma(t).frameJob.update({ where: { id: chunkId }, data: { attempt } });
}

/** Every chunk of the job on its nth attempt. */
export async function jobChunksAttempt(t: TestApp, jobId: string, attempt: number): Promise<void> {
  await prisma(t).frameJob.updateMany({ where: { renderJobId: jobId }, data: { attempt } });
}

/** A node's failures on a job, kept off it from `blockedAt` when given, as that many failed chunks would leave them. */
export async function jobFailures(t: TestApp, jobId: string, nodeId: string, failures: number, blockedAt?: Date): Promise<void> {
  await prisma(t).jobNodeBlock.create({ data: { renderJobId: jobId, nodeId, failures, blockedAt } });
}

/** A crash of the node recorded at a given time (now when none is given), with no job behind it. */
export async function nodeCrash(t: TestApp, nodeId: string, crash: Omit<Prisma.NodeCrashUncheckedCreateInput, 'nodeId'>): Promise<void> {
  await prisma(t).nodeCrash.create({ data: { nodeId, ...crash } });
}
