// A node can keep heartbeating while its After Effects hangs on a chunk. A chunk that made no
// progress (no frame reported, not newly assigned) for CHUNK_STALL_TIMEOUT_MS is taken back: its
// missing frames are re-cut for any node, and the node is told to close After Effects.
import { CommandStatus, CommandType, NodeStatus, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock } from '../../ports.ts';
import { writeJobLog } from '../jobs/job-log.ts';
import { ACTIVE_CHUNK, OPEN_COMMAND, recutChunk } from './recut.ts';

/** Far longer than any one frame takes, so only a hang trips it. */
export const CHUNK_STALL_TIMEOUT_MS = 3 * 60 * 1000;
const STALL_LOCK = 7_270_003;

export async function sweepStalledChunks(prisma: PrismaClient, clock: Clock): Promise<{ stalled: number }> {
  const now = clock.now();
  const stalled = await prisma.$transaction(
    async (tx) => {
      const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${STALL_LOCK}::bigint) AS locked`;
      if (!lock?.locked) return 0;
      const chunks = await tx.frameJob.findMany({
        where: { status: { in: ACTIVE_CHUNK }, updatedAt: { lt: new Date(now.getTime() - CHUNK_STALL_TIMEOUT_MS) } },
        select: { id: true, nodeId: true, renderJobId: true },
      });
      const reason = `no progress for ${CHUNK_STALL_TIMEOUT_MS / 1000} s`;
      for (const chunk of chunks) {
        await tx.nodeCommand.updateMany({
          where: { frameJobId: chunk.id, status: { in: OPEN_COMMAND } },
          data: { status: CommandStatus.Failed, completedAt: now },
        });
        await recutChunk(tx, chunk.id, 'Failed', reason);
        await writeJobLog(tx, chunk.renderJobId, { level: 'warn', message: `A chunk stalled (${reason}); rendering its missing frames again`, nodeId: chunk.nodeId });
        if (chunk.nodeId) {
          await tx.nodeCommand.create({ data: { nodeId: chunk.nodeId, type: CommandType.close_ae, payload: { reason } } });
          await tx.renderNode.update({
            where: { id: chunk.nodeId },
            data: { status: NodeStatus.Online, currentJobId: null, consecutiveFailures: { increment: 1 } },
          });
        }
      }
      return chunks.length;
    },
    { timeout: 60_000 },
  );
  return { stalled };
}
