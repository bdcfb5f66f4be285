// What render node agents report, and what each report changes. Every report is checked
// against the work the node currently holds: a report about work that was taken away (its
// lease changed, or it went to another node) is refused with STALE_LEASE, so a node presumed
// dead can never overwrite its successor's work.
import { z } from 'zod';
import { CommandStatus, CommandType, FrameJobStatus, JobStep, Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock, EventBus, ObjectStore } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { retryOnConflict, type SqlDriver, type Tx } from '../db.ts';
import { groupCommit } from '../group-commit.ts';
import { type FrameReportToWrite, writeFrameReports } from './frame-reports.ts';
import { NotFoundError, StaleLeaseError, ValidationError } from '../errors.ts';
import { publishSnapshotUpdated } from '../events.ts';
import { requireNode } from '../guards.ts';
import { failIfOutOfAttempts } from '../jobs/endings.ts';
import { type JobChanges, jobChanges, jobChangesInSql } from '../jobs/job-changes.ts';
import { writeJobLog } from '../jobs/job-log.ts';
import { moveNode, type NodeMove, publishNodeMoves } from '../nodes/node-status.ts';
import { parseInput, uuid } from '../validation.ts';
import { BLOCK_AFTER_JOB_FAILURES, crashAction } from '../scheduling/failure-policy.ts';
import type { Scheduler } from '../scheduling/scheduler.ts';
import { renderAcknowledged } from '../snapshots/snapshot-renders.ts';
import { ACTIVE_CHUNK, finishWork, heldChunk, heldCommand, OPEN_COMMAND } from '../work/leases.ts';
import { FIT_TIMEOUT_MS, fitChunksAtRenderingStart, jobsWorkedBy, recutChunk, releaseNodeWork } from '../work/recut.ts';

/** How long exports stay before the sweeper removes them, unless extended. */
export const EXPORT_RETENTION_DAYS = 30;

const lease = z.string().trim().min(1).max(100);
const md5 = z.string().regex(/^[a-f0-9]{32}$/i, 'must be an md5 hex digest').transform((v) => v.toLowerCase());

export const frameReportSchema = z.strictObject({
  frameJobId: uuid,
  frameNumber: z.number().int().min(0).max(10_000_000),
  fileSizeBytes: z.number().int().min(0).max(10 * 1024 ** 3).optional(),
  completedAt: z.iso.datetime({ offset: true }).optional(),
  lease: lease.optional(),
  previewB64: z.string().max(512 * 1024).regex(/^[A-Za-z0-9+/=]*$/, 'must be base64').optional(),
});
export type FrameReport = z.input<typeof frameReportSchema>;

export const chunkReportSchema = z.strictObject({ lease: lease.optional(), error: z.string().max(10_000).optional() });
// The lease of an upload arrives in the query string, where it may also come repeated (a list) or
// hold a NUL, which PostgreSQL cannot compare: it is parsed like any lease of a body.
const outputUploadSchema = z.object({ lease: lease.optional() });
export const crashReportSchema = z.strictObject({
  nodeId: uuid,
  frameJobId: uuid.optional(),
  lastKnownFrame: z.number().int().min(0).max(10_000_000).optional(),
  crashSignal: z.string().max(200).optional(),
  aeVersion: z.string().max(40).optional(),
  errorLogTail: z.string().max(64 * 1024).optional(),
  logFileUrl: z.string().max(2000).optional(),
  lease: lease.optional(),
});
export const replicaReadySchema = z.strictObject({
  nodeId: uuid,
  replicaPath: z.string().trim().min(1).max(1000),
  replicaMd5: md5.optional(),
  lease: lease.optional(),
});
export const OUTPUT_FORMAT = /^[a-z0-9]{2,8}$/;
export const encodedSchema = z.strictObject({
  lease: lease.optional(),
  width: z.number().int().min(1).max(16384),
  height: z.number().int().min(1).max(16384),
  durationSec: z.number().positive().max(36_000),
  formats: z.array(z.string().regex(OUTPUT_FORMAT, 'must be a short lowercase format name such as mp4')).min(1).max(10),
});
export const cacheUpdateSchema = z.strictObject({
  action: z.enum(['Downloaded', 'Evicted', 'Verified', 'Failed']),
  projectId: uuid.optional(),
  aepFileMd5: md5,
  fileSizeBytes: z.number().int().min(0).optional(),
  cacheUsedGb: z.number().int().min(0).max(1_000_000).optional(),
  errorMessage: z.string().max(2000).optional(),
});

const CONTENT_TYPES: Record<string, string> = {
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  gif: 'image/gif',
  jpg: 'image/jpeg',
  png: 'image/png',
};

export function outputKey(jobId: string, format: string): string {
  return `exports/${jobId}/output.${format}`;
}

export interface AgentServiceDeps {
  prisma: PrismaClient;
  driver: SqlDriver;
  bus: EventBus;
  clock: Clock;
  store: ObjectStore;
  scheduler: Scheduler;
}

export function createAgentService({ prisma, driver, bus, clock, store, scheduler }: AgentServiceDeps) {
  const changeJobs = jobChanges({ prisma, bus, clock });
  const changeJobsInSql = jobChangesInSql({ transaction: driver.transaction, bus, clock });

  const frameReports = groupCommit<FrameReportToWrite, undefined>({
    write: (batch) =>
      retryOnConflict(() =>
        // A batch answers many agents: on the embedded database, whose transactions go through
        // Prisma, it waits for a busy connection rather than failing them all after Prisma's default 2 s.
        changeJobsInSql((changes) => writeFrameReports(changes, batch), { timeout: 30_000, maxWait: 10_000 }),
      ),
  });

  // Every command a node runs is acknowledged once, which makes acknowledgements an agent's most
  // frequent request after heartbeats and frame reports: written in batches, one statement each.
  // Acknowledging twice, or after the command was superseded, changes nothing; a batch answers
  // each with the type of the command it acknowledged now (or null), or NOT_FOUND.
  const acknowledgements = groupCommit<{ nodeId: string; commandId: string }, CommandType | null>({
    keyOf: (ack) => ack.commandId,
    write: (batch) =>
      retryOnConflict(async () => {
        const input = JSON.stringify(batch.map((ack, position) => ({ position, node_id: ack.nodeId, id: ack.commandId })));
        const rows = await driver.prepared<{ position: number; acknowledged: CommandType | null; known: boolean }>(
          'acknowledge-commands',
          Prisma.sql`
            WITH input AS (SELECT * FROM jsonb_to_recordset(${input}::jsonb) AS i(position int, node_id uuid, id uuid)),
            acknowledged AS (
              UPDATE node_commands c SET status = ${CommandStatus.Acknowledged}::"CommandStatus", acknowledged_at = ${clock.now()}
              FROM input i
              WHERE c.id = i.id AND c.node_id = i.node_id AND c.status = ${CommandStatus.Pending}::"CommandStatus"
              RETURNING c.id, c.type
            )
            SELECT i.position, a.type::text AS acknowledged,
              EXISTS (SELECT 1 FROM node_commands c WHERE c.id = i.id AND c.node_id = i.node_id) AS known
            FROM input i LEFT JOIN acknowledged a ON a.id = i.id`,
        );
        const byPosition = new Map(rows.map((row) => [row.position, row]));
        return batch.map((ack, position) => {
          const row = byPosition.get(position);
          return row?.known ? row.acknowledged : new NotFoundError('command', ack.commandId);
        });
      }),
  });

  /** After a chunk closes: when every frame of the job is rendered, the job moves to Encoding. */
  async function maybeStartEncoding({ tx, move }: JobChanges, jobId: string): Promise<void> {
    const [open, missing, job] = await Promise.all([
      tx.frameJob.count({ where: { renderJobId: jobId, status: { in: [FrameJobStatus.Pending, ...ACTIVE_CHUNK] } } }),
      tx.frame.count({ where: { renderJobId: jobId, rendered: false } }),
      tx.renderJob.findUniqueOrThrow({ where: { id: jobId }, select: { step: true } }),
    ]);
    if (open > 0 || missing > 0 || job.step !== JobStep.Rendering) return;
    await move(jobId, { to: JobStep.Encoding, log: { level: 'info', message: 'Every frame is rendered; encoding' } });
  }

  /** Counts a failure of this node on this job; at the limit the node is kept off the job. */
  async function countJobFailure(tx: Tx, jobId: string, nodeId: string): Promise<number> {
    const block = await tx.jobNodeBlock.upsert({
      where: { renderJobId_nodeId: { renderJobId: jobId, nodeId } },
      create: { renderJobId: jobId, nodeId, failures: 1 },
      update: { failures: { increment: 1 } },
    });
    if (block.failures >= BLOCK_AFTER_JOB_FAILURES && !block.blockedAt) {
      await tx.jobNodeBlock.update({
        where: { renderJobId_nodeId: { renderJobId: jobId, nodeId } },
        data: { blockedAt: clock.now() },
      });
    }
    return block.failures;
  }

  return {
    async acknowledge(actor: Actor, nodeId: string, commandId: string) {
      requireNode(actor, nodeId);
      const id = parseInput(uuid, commandId, 'command id');
      const acknowledged = await acknowledgements.submit({ nodeId: nodeId.toLowerCase(), commandId: id.toLowerCase() });
      if (acknowledged !== CommandType.render_snapshot) return;
      const changes = await prisma.$transaction(async (tx) => renderAcknowledged(tx, await tx.nodeCommand.findUniqueOrThrow({ where: { id } })));
      await Promise.all(changes.map((change) => publishSnapshotUpdated(bus, change)));
    },

    /** One rendered frame; reporting the same frame again changes nothing. */
    async reportFrame(actor: Actor, jobId: string, input: FrameReport) {
      const node = requireNode(actor);
      const id = parseInput(uuid, jobId, 'render job id');
      const report = parseInput(frameReportSchema, input, 'frame report');
      // Answered once the batch holding this report committed (and its progress was published).
      await frameReports.submit({
        nodeId: node.nodeId,
        jobId: id,
        frameJobId: report.frameJobId,
        frameNumber: report.frameNumber,
        lease: report.lease,
        fileSizeBytes: report.fileSizeBytes,
        completedAt: report.completedAt ? new Date(report.completedAt) : clock.now(),
        previewB64: report.previewB64,
      });
    },

    /** The node finished its chunk; frames it never reported are cut into a new chunk. */
    async completeChunk(actor: Actor, jobId: string, frameJobId: string, input: z.input<typeof chunkReportSchema>) {
      const node = requireNode(actor);
      const id = parseInput(uuid, jobId, 'render job id');
      const chunkId = parseInput(uuid, frameJobId, 'frame job id');
      const report = parseInput(chunkReportSchema, input, 'chunk report');
      const finished = await changeJobs(async (changes) => {
        const { tx, now } = changes;
        // Two nodes finishing the last chunks of a job at once would each see the other's chunk
        // still open, and neither would start encoding: a job's completions take turns.
        await changes.lock([id]);
        await heldChunk(tx, node.nodeId, id, chunkId, report.lease);
        const command = await tx.nodeCommand.findFirst({ where: { frameJobId: chunkId, nodeId: node.nodeId, status: { in: OPEN_COMMAND } } });
        const { missingFrames } = await recutChunk(tx, chunkId, FrameJobStatus.Failed, null);
        if (missingFrames > 0) {
          await writeJobLog(tx, id, {
            level: 'warn',
            message: `${missingFrames} frames of a finished chunk were never reported; rendering them again`,
            nodeId: node.nodeId,
          });
        }
        const finished = command ? await finishWork(tx, node.nodeId, command.id, true, now) : null;
        await maybeStartEncoding(changes, id);
        return finished;
      });
      await publishNodeMoves(bus, [finished]);
    },

    /** The node gave up on its chunk; its missing frames go back to the queue. */
    async failChunk(actor: Actor, jobId: string, frameJobId: string, input: z.input<typeof chunkReportSchema>) {
      const node = requireNode(actor);
      const id = parseInput(uuid, jobId, 'render job id');
      const chunkId = parseInput(uuid, frameJobId, 'frame job id');
      const report = parseInput(chunkReportSchema, input, 'chunk report');
      const { chunk, finished } = await changeJobs(async (changes) => {
        const { tx, now } = changes;
        // The job before its chunk, as every change of a job: a cancel that commits meanwhile has
        // withdrawn the chunk by the time it is read, and the report is refused as stale.
        await changes.lock([id]);
        const chunk = await heldChunk(tx, node.nodeId, id, chunkId, report.lease);
        const command = await tx.nodeCommand.findFirst({ where: { frameJobId: chunkId, nodeId: node.nodeId, status: { in: OPEN_COMMAND } } });
        const error = report.error ?? 'the node gave up on the chunk';
        await recutChunk(tx, chunkId, FrameJobStatus.Failed, error);
        await countJobFailure(tx, id, node.nodeId);
        const finished = command ? await finishWork(tx, node.nodeId, command.id, false, now) : null;
        await writeJobLog(tx, id, { level: 'warn', message: `Chunk failed: ${error}`, nodeId: node.nodeId, meta: { frame_job_id: chunkId } });
        return { chunk, finished };
      });
      await publishNodeMoves(bus, [finished]);
      await changeJobs((changes) => failIfOutOfAttempts(changes, chunk, node.nodeId));
    },

    /** After Effects crashed: record it, apply the crash policy, say what the node should do. */
    async reportCrash(actor: Actor, jobId: string, input: z.input<typeof crashReportSchema>) {
      const id = parseInput(uuid, jobId, 'render job id');
      const report = parseInput(crashReportSchema, input, 'crash report');
      const node = requireNode(actor, report.nodeId);
      const decision = await changeJobs(async (changes) => {
        const { tx, now } = changes;
        // The job and every job the node works on, before any chunk: a restart releases all of
        // them, and a change locks its jobs at once, in id order.
        await changes.lock([id, ...(await jobsWorkedBy(tx, [node.nodeId]))]);
        const job = await tx.renderJob.findUnique({ where: { id }, select: { id: true } });
        if (!job) throw new NotFoundError('render job', id);
        const chunk = report.frameJobId ? await heldChunk(tx, node.nodeId, id, report.frameJobId, report.lease) : null;
        // A node reports crashes on jobs it was given work on, never into a stranger's job log.
        if (!chunk && !(await tx.nodeCommand.findFirst({ where: { nodeId: node.nodeId, renderJobId: id }, select: { id: true } }))) {
          throw new StaleLeaseError(`This node was never given work on render job ${id}`, { job_id: id });
        }
        const updated = await tx.renderNode.update({
          where: { id: node.nodeId },
          data: { lifetimeCrashCount: { increment: 1 }, consecutiveFailures: { increment: 1 }, aeRunning: false },
        });
        const failuresOnThisJob = await countJobFailure(tx, id, node.nodeId);
        const crashesInLastHour = await tx.nodeCrash.count({
          where: { nodeId: node.nodeId, crashedAt: { gt: new Date(now.getTime() - 60 * 60 * 1000) } },
        });
        const action = crashAction({
          consecutiveFailures: updated.consecutiveFailures,
          crashesInLastHour: crashesInLastHour + 1,
          failuresOnThisJob,
        });
        let newChunkIds: string[] = [];
        let nodeMove: NodeMove;
        // The answer's action_recommended is the instruction (closing After Effects, rebooting);
        // queueing the same as a command as well would make the agent do it twice.
        if (action === 'RestartNode') {
          await releaseNodeWork(changes, node.nodeId, 'the node is restarting after repeated crashes');
          nodeMove = await moveNode(tx, node.nodeId, 'lost');
        } else {
          if (chunk) {
            newChunkIds = (await recutChunk(tx, chunk.id, FrameJobStatus.Failed, `After Effects crashed (${report.crashSignal ?? 'unknown signal'})`)).newChunkIds;
          }
          await tx.nodeCommand.updateMany({
            where: { nodeId: node.nodeId, renderJobId: id, frameJobId: chunk?.id, status: { in: OPEN_COMMAND } },
            data: { status: CommandStatus.Failed, completedAt: now },
          });
          nodeMove = await moveNode(tx, node.nodeId, 'workEnded', { currentJobId: null });
        }
        const crash = await tx.nodeCrash.create({
          data: {
            nodeId: node.nodeId,
            renderJobId: id,
            frameJobId: chunk?.id ?? null,
            crashedAt: now,
            lastKnownFrame: report.lastKnownFrame ?? null,
            crashSignal: report.crashSignal ?? '',
            aeVersion: report.aeVersion ?? null,
            errorLog: report.errorLogTail ?? '',
            logFileUrl: report.logFileUrl ?? '',
            autoRecovered: true,
            recoveryAction: action,
            recoveredAt: now,
          },
        });
        await writeJobLog(tx, id, {
          level: 'error',
          message: `After Effects crashed on a node: ${action}`,
          nodeId: node.nodeId,
          meta: { crash_id: crash.id, crash_signal: report.crashSignal ?? null, last_known_frame: report.lastKnownFrame ?? null },
        });
        return { action, newChunkIds, crashId: crash.id, chunk, nodeMove };
      });
      await publishNodeMoves(bus, [decision.nodeMove]);
      let reassignedTo: string | null = null;
      if (decision.action === 'ReassignWork' && decision.newChunkIds.length > 0) {
        const pass = await scheduler.assignWork();
        reassignedTo = decision.newChunkIds.map((chunkId) => pass.placements.get(chunkId)).find(Boolean) ?? null;
        if (reassignedTo) {
          await prisma.nodeCrash.update({ where: { id: decision.crashId }, data: { reassignedToNodeId: reassignedTo } });
        }
      }
      const { chunk } = decision;
      if (chunk) await changeJobs((changes) => failIfOutOfAttempts(changes, chunk, node.nodeId));
      return { actionRecommended: decision.action, reassignedToNodeId: reassignedTo };
    },

    /** The replica project is saved: the job can render. */
    async replicaReady(actor: Actor, jobId: string, input: z.input<typeof replicaReadySchema>) {
      const id = parseInput(uuid, jobId, 'render job id');
      const report = parseInput(replicaReadySchema, input, 'replica report');
      const node = requireNode(actor, report.nodeId);
      const finished = await changeJobs(async (changes) => {
        const { tx, now, move } = changes;
        const command = await heldCommand(tx, node.nodeId, { type: CommandType.prepare_replica, jobId: id }, report.lease);
        // Before the move, whose log line stays the job's latest message.
        await fitChunksAtRenderingStart(changes, id);
        const moved = await move(id, {
          to: JobStep.Rendering,
          data: { replicaPath: report.replicaPath, replicaMd5: report.replicaMd5 ?? null },
          log: { level: 'info', message: 'Replica project ready; rendering', nodeId: node.nodeId },
        });
        const finished = await finishWork(tx, node.nodeId, command.id, true, now);
        if (moved.aepFileMd5) {
          await tx.nodeTemplateCache.upsert({
            where: { nodeId_aepFileMd5: { nodeId: node.nodeId, aepFileMd5: moved.aepFileMd5 } },
            create: { nodeId: node.nodeId, aepFileMd5: moved.aepFileMd5, projectId: moved.savedProjectId, state: 'Verified' },
            update: { state: 'Verified', errorMessage: null },
          });
        }
        return finished;
      }, { timeout: FIT_TIMEOUT_MS });
      await publishNodeMoves(bus, [finished]);
    },

    /** One encoded output of the job, stored in the object store until `encoded` is reported. */
    async uploadOutput(actor: Actor, jobId: string, format: string, givenLease: unknown, bytes: Buffer) {
      const node = requireNode(actor);
      const id = parseInput(uuid, jobId, 'render job id');
      const kind = parseInput(z.string().regex(OUTPUT_FORMAT, 'must be a short lowercase format name such as mp4'), format, 'format');
      const { lease: held } = parseInput(outputUploadSchema, { lease: givenLease }, 'output upload');
      if (bytes.length === 0) throw new ValidationError('The output is empty', [{ path: 'body', message: 'must hold the file bytes' }]);
      await prisma.$transaction((tx) => heldCommand(tx, node.nodeId, { type: CommandType.encode, jobId: id }, held));
      await store.put(outputKey(id, kind), bytes, CONTENT_TYPES[kind] ?? 'application/octet-stream');
    },

    /** Every output is uploaded: the Export is created and the job is Completed. */
    async encoded(actor: Actor, jobId: string, input: z.input<typeof encodedSchema>) {
      const node = requireNode(actor);
      const id = parseInput(uuid, jobId, 'render job id');
      const report = parseInput(encodedSchema, input, 'encode report');
      const outputs = await Promise.all(
        report.formats.map(async (format) => ({ format, key: outputKey(id, format), object: await store.get(outputKey(id, format)) })),
      );
      const missing = outputs.filter((output) => !output.object).map((output) => output.format);
      for (const output of outputs) output.object?.body.destroy();
      if (missing.length > 0) {
        throw new ValidationError('Some outputs were not uploaded', [{ path: 'formats', message: `missing: ${missing.join(', ')}` }]);
      }
      const { job, finished } = await changeJobs(async ({ tx, now, move }) => {
        const command = await heldCommand(tx, node.nodeId, { type: CommandType.encode, jobId: id }, report.lease);
        const current = await tx.renderJob.findUniqueOrThrow({ where: { id } });
        const [main] = outputs;
        const image = outputs.find((output) => output.format === 'jpg' || output.format === 'png');
        const exported = await tx.export.create({
          data: {
            userId: current.userId,
            renderJobId: id,
            savedProjectId: current.savedProjectId,
            path: main?.key ?? '',
            image: image?.key ?? '',
            sizeBytes: BigInt(main?.object?.size ?? 0),
            durationSec: report.durationSec,
            width: report.width,
            height: report.height,
            fileExtension: main?.format ?? '',
            fileType: main?.format ?? '',
            renderQuality: current.quality,
            createType: 'Render',
            produceDate: now,
            autoDeleteDate: new Date(now.getTime() + EXPORT_RETENTION_DAYS * 24 * 60 * 60 * 1000),
          },
        });
        await tx.exportFile.createMany({
          data: outputs.map((output) => ({
            exportId: exported.id,
            path: output.key,
            sizeBytes: BigInt(output.object?.size ?? 0),
            fileType: output.format,
          })),
        });
        const job = await move(id, {
          to: JobStep.Completed,
          log: { level: 'info', message: 'Render completed', nodeId: node.nodeId, meta: { export_id: exported.id } },
        });
        return { job, finished: await finishWork(tx, node.nodeId, command.id, true, now) };
      });
      await publishNodeMoves(bus, [finished]);
      return job;
    },

    /** A change in a node's template cache, which placement prefers. */
    async cacheUpdate(actor: Actor, nodeId: string, input: z.input<typeof cacheUpdateSchema>) {
      requireNode(actor, nodeId);
      const report = parseInput(cacheUpdateSchema, input, 'cache update');
      const node = await prisma.renderNode.findUnique({ where: { id: nodeId }, select: { id: true } });
      if (!node) throw new NotFoundError('render node', nodeId);
      await prisma.$transaction(async (tx) => {
        const key = { nodeId_aepFileMd5: { nodeId, aepFileMd5: report.aepFileMd5 } };
        if (report.action === 'Evicted') {
          await tx.nodeTemplateCache.deleteMany({ where: { nodeId, aepFileMd5: report.aepFileMd5 } });
        } else {
          const fields = {
            state: report.action,
            projectId: report.projectId ?? null,
            fileSizeBytes: report.fileSizeBytes === undefined ? null : BigInt(report.fileSizeBytes),
            errorMessage: report.action === 'Failed' ? (report.errorMessage ?? 'download failed') : null,
          };
          await tx.nodeTemplateCache.upsert({ where: key, create: { nodeId, aepFileMd5: report.aepFileMd5, ...fields }, update: fields });
        }
        if (report.cacheUsedGb !== undefined) {
          await tx.renderNode.update({ where: { id: nodeId }, data: { cacheUsedGb: report.cacheUsedGb } });
        }
      });
    },
  };
}

export type AgentService = ReturnType<typeof createAgentService>;
