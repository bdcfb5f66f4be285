// What identifies one snapshot render, which renders wait for a node, and how a render's
// snapshots move together. A still depends only on the template (its aep md5), the scene and the
// frame: every snapshot row with the same three shares one render and its objects. Kept apart
// from the snapshot service so that the scheduler and the stall sweeper can read and move renders
// without depending on the agent-facing code.
import { CommandStatus, CommandType, type NodeCommand, type Prisma, SnapshotStatus } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import type { SnapshotChanged } from '../events.ts';
import { lockSnapshotRender } from '../locks.ts';
import { OPEN_COMMAND } from '../work/leases.ts';

/** Statuses of a snapshot whose render is still to come; they all move together. */
export const IN_FLIGHT: SnapshotStatus[] = [SnapshotStatus.Pending, SnapshotStatus.Rendering];

/**
 * What makes two snapshot requests the same render. The saved project is part of it: projects
 * built on one template differ in their content, and one user must never see another's.
 */
export interface RenderKey {
  savedProjectId: string;
  aepFileMd5: string;
  sceneKey: string;
  frameNumber: number;
}

export interface SnapshotToRender extends RenderKey {
  id: string;
  savedProjectId: string;
  requestedAt: Date;
  /** The saved project's After Effects version, which the node must run. */
  aeVersion: string | null;
  /** Times the render was handed to a node before; the last one is `nodeId`. */
  attempts: number;
  nodeId: string | null;
}

export type SnapshotFile = 'image' | 'thumbnail';

export function renderKeyOf({ savedProjectId, aepFileMd5, sceneKey, frameNumber }: RenderKey): RenderKey {
  return { savedProjectId, aepFileMd5, sceneKey, frameNumber };
}

function keyText(key: RenderKey): string {
  return JSON.stringify([key.savedProjectId, key.aepFileMd5, key.sceneKey, key.frameNumber]);
}

/**
 * Where a file of one attempt at a render lives. Each command has its own keys, so an upload
 * from a node the render was taken from can never replace its successor's file.
 */
export function snapshotObjectKey(snapshotId: string, commandId: string, file: SnapshotFile): string {
  return `snapshots/${snapshotId}/${commandId}/${file}`;
}

/**
 * Serializes everything that decides the fate of one render (a request joining it or reusing its
 * image, its start, completion or failure) until the transaction ends. Different renders whose
 * hashes collide only wait for each other.
 */
export async function lockRender(tx: Tx, key: RenderKey): Promise<void> {
  await lockSnapshotRender(tx, keyText(key));
}

function keyOfPayload(payload: Prisma.JsonValue): string | null {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return null;
  const { saved_project_id: savedProjectId, aep_file_md5: aepFileMd5, scene_key: sceneKey, frame_number: frameNumber } = payload;
  if (typeof savedProjectId !== 'string' || typeof aepFileMd5 !== 'string' || typeof sceneKey !== 'string' || typeof frameNumber !== 'number') {
    return null;
  }
  return keyText({ savedProjectId, aepFileMd5, sceneKey, frameNumber });
}

/** Moves the render's snapshots that are in one of `from`; called with the render locked. */
export async function moveRender(
  tx: Tx,
  key: RenderKey,
  from: SnapshotStatus[],
  data: Prisma.SnapshotUpdateManyMutationInput & { status: SnapshotStatus },
): Promise<SnapshotChanged[]> {
  const rows = await tx.snapshot.findMany({ where: { ...renderKeyOf(key), status: { in: from } }, select: { id: true } });
  await tx.snapshot.updateMany({ where: { id: { in: rows.map((row) => row.id) } }, data });
  return rows.map((row) => ({ snapshotId: row.id, status: data.status }));
}

/** A node acknowledged a render_snapshot command: the render is under way on it. */
export async function renderAcknowledged(tx: Tx, command: Pick<NodeCommand, 'nodeId' | 'payload'>): Promise<SnapshotChanged[]> {
  const payload = command.payload;
  const snapshotId = payload && typeof payload === 'object' && !Array.isArray(payload) ? payload.snapshot_id : undefined;
  if (typeof snapshotId !== 'string') return [];
  const snapshot = await tx.snapshot.findUnique({ where: { id: snapshotId } });
  if (!snapshot) return [];
  await lockRender(tx, snapshot);
  return moveRender(tx, snapshot, IN_FLIGHT, { status: SnapshotStatus.Rendering, nodeId: command.nodeId });
}

// A render's command is on the node its snapshots name (set when it is placed), which keeps
// lookups of render_snapshot commands on the commands' node index.
function onNamedNodes(snapshots: Array<{ nodeId: string | null }>): Prisma.NodeCommandWhereInput {
  return {
    nodeId: { in: [...new Set(snapshots.flatMap((snapshot) => (snapshot.nodeId ? [snapshot.nodeId] : [])))] },
    type: CommandType.render_snapshot,
  };
}

/**
 * The open render_snapshot commands that made no progress since `since`: never acknowledged, or
 * acknowledged and never completed, by then.
 */
export async function stalledRenderCommands(tx: Tx, since: Date) {
  const named = await tx.snapshot.findMany({
    where: { status: { in: IN_FLIGHT }, nodeId: { not: null } },
    select: { nodeId: true },
    distinct: ['nodeId'],
  });
  return tx.nodeCommand.findMany({
    where: {
      ...onNamedNodes(named),
      OR: [
        { status: CommandStatus.Pending, createdAt: { lt: since } },
        { status: CommandStatus.Acknowledged, acknowledgedAt: { lt: since } },
      ],
    },
    select: { id: true, nodeId: true, status: true },
  });
}

/**
 * Renders that need a node: one snapshot per key among those in flight whose key no open
 * render_snapshot command covers. Rendering ones are included so that a render whose node was
 * lost or stalled (its command superseded or failed) is given to another node.
 */
export async function snapshotsAwaitingRender(tx: Tx, take: number): Promise<SnapshotToRender[]> {
  const inFlight = await tx.snapshot.findMany({
    where: { status: { in: IN_FLIGHT } },
    select: {
      id: true,
      savedProjectId: true,
      sceneKey: true,
      frameNumber: true,
      aepFileMd5: true,
      requestedAt: true,
      nodeId: true,
      attempts: true,
    },
    orderBy: [{ requestedAt: 'asc' }, { id: 'asc' }],
    take,
  });
  if (inFlight.length === 0) return [];
  const open = await tx.nodeCommand.findMany({
    where: { ...onNamedNodes(inFlight), status: { in: OPEN_COMMAND } },
    select: { payload: true },
  });
  const covered = new Set(open.map((command) => keyOfPayload(command.payload)));
  const chosen = new Map<string, (typeof inFlight)[number]>();
  for (const snapshot of inFlight) {
    const key = keyText(snapshot);
    if (!covered.has(key) && !chosen.has(key)) chosen.set(key, snapshot);
  }
  if (chosen.size === 0) return [];
  const projects = await tx.savedProject.findMany({
    where: { id: { in: [...new Set([...chosen.values()].map((snapshot) => snapshot.savedProjectId))] } },
    select: { id: true, aeVersion: true },
  });
  const aeVersions = new Map(projects.map((project) => [project.id, project.aeVersion]));
  return [...chosen.values()].map((snapshot) => ({ ...snapshot, aeVersion: aeVersions.get(snapshot.savedProjectId) ?? null }));
}
