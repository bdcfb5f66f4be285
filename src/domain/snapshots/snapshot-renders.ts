// What identifies one snapshot render, and which renders wait for a node. A still depends only
// on the template (its aep md5), the scene and the frame: every snapshot row with the same three
// shares one render and its objects. Kept apart from the snapshot service so that the scheduler
// can read the queue without depending on the agent-facing code.
import { CommandType, type Prisma, SnapshotStatus } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import { OPEN_COMMAND } from '../scheduling/recut.ts';

/** Statuses of a snapshot whose render is still to come; they all move together. */
export const IN_FLIGHT: SnapshotStatus[] = [SnapshotStatus.Pending, SnapshotStatus.Rendering];

// The two-integer advisory lock space, apart from the scheduler's single bigint keys.
const SNAPSHOT_LOCK_SPACE = 7_270_010;

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
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SNAPSHOT_LOCK_SPACE}::int, hashtext(${keyText(key)}))`;
}

function keyOfPayload(payload: Prisma.JsonValue): string | null {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return null;
  const { saved_project_id: savedProjectId, aep_file_md5: aepFileMd5, scene_key: sceneKey, frame_number: frameNumber } = payload;
  if (typeof savedProjectId !== 'string' || typeof aepFileMd5 !== 'string' || typeof sceneKey !== 'string' || typeof frameNumber !== 'number') {
    return null;
  }
  return keyText({ savedProjectId, aepFileMd5, sceneKey, frameNumber });
}

/**
 * Renders that need a node: one snapshot per key among those in flight whose key no open
 * render_snapshot command covers. Rendering ones are included so that a render whose node was
 * lost (its command superseded) is given to another node.
 */
export async function snapshotsAwaitingRender(tx: Tx, take: number): Promise<SnapshotToRender[]> {
  const inFlight = await tx.snapshot.findMany({
    where: { status: { in: IN_FLIGHT } },
    select: { id: true, savedProjectId: true, sceneKey: true, frameNumber: true, aepFileMd5: true, requestedAt: true, nodeId: true },
    orderBy: [{ requestedAt: 'asc' }, { id: 'asc' }],
    take,
  });
  if (inFlight.length === 0) return [];
  // A render's command is on the node its snapshots name (set when it is placed), which keeps
  // this lookup on the commands' node index.
  const open = await tx.nodeCommand.findMany({
    where: {
      nodeId: { in: [...new Set(inFlight.flatMap((snapshot) => (snapshot.nodeId ? [snapshot.nodeId] : [])))] },
      type: CommandType.render_snapshot,
      status: { in: OPEN_COMMAND },
    },
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
