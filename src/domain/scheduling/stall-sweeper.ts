// A node can keep heartbeating while its After Effects hangs, or never take a command it was
// given. Work that made no progress for STALL_TIMEOUT_MS is taken back, so that the scheduler
// gives it to another node:
// - a chunk with no frame reported (and not newly assigned): its missing frames are re-cut for
//   any node, and the node is told to close After Effects;
// - a render_snapshot command never acknowledged, or acknowledged and never completed: the
//   command fails, the render waits for another node (see the scheduler, which also fails it
//   after MAX_SNAPSHOT_ATTEMPTS), and a node that had taken it is told to close After Effects.
//   A node that never took it is left alone: it may be rendering chunks meanwhile.
import { CommandStatus, CommandType, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Tx } from '../db.ts';
import { jobChanges } from '../jobs/job-changes.ts';
import { writeJobLog } from '../jobs/job-log.ts';
import { tryLock } from '../locks.ts';
import { moveNode } from '../nodes/node-status.ts';
import { stalledRenderCommands } from '../snapshots/snapshot-renders.ts';
import { ACTIVE_CHUNK, OPEN_COMMAND } from '../work/leases.ts';
import { recutChunk } from '../work/recut.ts';

/** Far longer than any one frame or still takes, so only a hang trips it. */
export const STALL_TIMEOUT_MS = 3 * 60 * 1000;

/** The node's After Effects hangs on its work: it is closed, and the node is free for other work. */
async function releaseHungNode(tx: Tx, nodeId: string, reason: string): Promise<void> {
  await tx.nodeCommand.create({ data: { nodeId, type: CommandType.close_ae, payload: { reason } } });
  await moveNode(tx, nodeId, 'workEnded', { currentJobId: null, consecutiveFailures: { increment: 1 } });
}

/** Takes back stalled chunks and snapshot renders; answers how many of both. */
export async function sweepStalledWork(prisma: PrismaClient, bus: EventBus, clock: Clock): Promise<{ stalled: number }> {
  const stalled = await jobChanges({ prisma, bus, clock })(
    async ({ tx, now, touch, lock }) => {
      if (!(await tryLock(tx, 'stallSweep'))) return 0;
      const since = new Date(now.getTime() - STALL_TIMEOUT_MS);
      const reason = `no progress for ${STALL_TIMEOUT_MS / 1000} s`;
      const chunks = await tx.frameJob.findMany({
        where: { status: { in: ACTIVE_CHUNK }, updatedAt: { lt: since } },
        select: { id: true, nodeId: true, renderJobId: true },
      });
      await lock(chunks.map((chunk) => chunk.renderJobId));
      for (const chunk of chunks) {
        await tx.nodeCommand.updateMany({
          where: { frameJobId: chunk.id, status: { in: OPEN_COMMAND } },
          data: { status: CommandStatus.Failed, completedAt: now },
        });
        await recutChunk(tx, chunk.id, 'Failed', reason);
        await writeJobLog(tx, chunk.renderJobId, { level: 'warn', message: `A chunk stalled (${reason}); rendering its missing frames again`, nodeId: chunk.nodeId });
        if (chunk.nodeId) await releaseHungNode(tx, chunk.nodeId, reason);
      }
      touch(chunks.map((chunk) => chunk.renderJobId));
      let stills = 0;
      for (const command of await stalledRenderCommands(tx, since)) {
        // Unless the node acknowledged or finished it since it was read.
        const { count } = await tx.nodeCommand.updateMany({
          where: { id: command.id, status: command.status },
          data: { status: CommandStatus.Failed, completedAt: now },
        });
        stills += count;
        if (count > 0 && command.status === CommandStatus.Acknowledged) await releaseHungNode(tx, command.nodeId, reason);
      }
      return chunks.length + stills;
    },
    { timeout: 60_000 },
  );
  return { stalled };
}
