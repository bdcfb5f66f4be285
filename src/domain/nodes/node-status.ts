// A render node's status and liveness, in one place.
//
// NODE_TRANSITIONS says where each event takes a node from each status; an event a status does
// not list leaves the node where it is. Maintenance and Updating are administrative: an admin or
// a rollout sets them and only their own end moves a node out, so neither the agent's contact,
// nor the end of its work, nor its loss ends them (a node put aside while it rendered would
// otherwise be given new work the moment its chunk finished). moveNode applies the table to one
// node; statusAfterSql renders the same table into SQL for the batched writes (heartbeats,
// a scheduling pass), so the rule is written once.
//
// Liveness: a node is alive while it is Online or Busy and heartbeated within
// HEARTBEAT_TIMEOUT_MS; a live node that stays silent longer is lost (the sweep). A node is
// available for work when it is alive, active, open to new jobs, not failing in a row and not
// about to go into maintenance; placement gives work to available nodes with a free slot, and a
// job's chunk size follows how many available nodes run its After Effects version.
import { NodeStatus, Prisma } from '../../generated/prisma/client.ts';
import type { EventBus } from '../../ports.ts';
import type { Tx } from '../db.ts';
import { publishNodeStatusChanged } from '../events.ts';
import { RESTART_AFTER_CONSECUTIVE_FAILURES } from '../scheduling/failure-policy.ts';

/** How often an idle agent heartbeats. */
export const DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 5;
/** A node that missed this many heartbeats is lost: Offline, and its work moves. */
export const MISSED_HEARTBEATS_FOR_OFFLINE = 3;
export const HEARTBEAT_TIMEOUT_MS = MISSED_HEARTBEATS_FOR_OFFLINE * DEFAULT_HEARTBEAT_INTERVAL_SECONDS * 1000;
/** A node whose maintenance starts within this time gets no new work. */
export const MAINTENANCE_LEAD_MS = 10 * 60 * 1000;

/** The statuses of a node whose agent is running and reachable. */
export const LIVE_STATES: readonly NodeStatus[] = [NodeStatus.Online, NodeStatus.Busy];

export type NodeEvent =
  /** The agent was heard from without saying what it does (a heartbeat without a status). */
  | 'contact'
  /** The agent says it is idle (a heartbeat, or its start: a started agent runs nothing). */
  | 'reportedOnline'
  /** The agent says it is rendering. */
  | 'reportedBusy'
  /** The scheduler gave it a piece of work. */
  | 'workGiven'
  /** Its piece of work ended: completed, failed or taken back. */
  | 'workEnded'
  /** It went silent past the heartbeat timeout, or is restarting after repeated crashes. */
  | 'lost'
  /** A rollout sent it an update to install. */
  | 'updateStarted'
  /** It reported its update, or the rollout withdrew the update before the node received it. */
  | 'updateEnded'
  /** An admin put it into maintenance: it finishes what it holds and is given nothing new. */
  | 'maintenanceStarted'
  /** An admin ended its maintenance. */
  | 'maintenanceEnded';

const { Online, Busy, Offline, Maintenance, Updating } = NodeStatus;

export const NODE_TRANSITIONS: Readonly<Record<NodeEvent, Readonly<Partial<Record<NodeStatus, NodeStatus>>>>> = {
  contact: { Registered: Online, Offline: Online },
  reportedOnline: { Registered: Online, Busy: Online, Offline: Online },
  reportedBusy: { Registered: Busy, Online: Busy, Offline: Busy },
  workGiven: { Online: Busy },
  workEnded: { Registered: Online, Busy: Online, Offline: Online },
  lost: { Online: Offline, Busy: Offline },
  updateStarted: { Online: Updating, Busy: Updating },
  updateEnded: { Updating: Online },
  // An update under way is the rollout's to end: maintenance waits for it.
  maintenanceStarted: { Registered: Maintenance, Online: Maintenance, Busy: Maintenance, Offline: Maintenance },
  maintenanceEnded: { Maintenance: Online },
};

/** The event a heartbeat is: what the agent said it does, if it said. */
function contactEvent(reported: NodeStatus | null | undefined): NodeEvent {
  if (reported === Online) return 'reportedOnline';
  if (reported === Busy) return 'reportedBusy';
  return 'contact';
}

/** statusAfter in SQL, for `current`, a "NodeStatus" expression of a row read under lock. */
export function statusAfterSql(current: Prisma.Sql, event: NodeEvent): Prisma.Sql {
  const moves = Object.entries(NODE_TRANSITIONS[event]).map(([from, to]) => Prisma.sql`WHEN ${from}::"NodeStatus" THEN ${to}::"NodeStatus"`);
  if (moves.length === 0) return current;
  return Prisma.sql`(CASE ${current} ${Prisma.join(moves, ' ')} ELSE ${current} END)`;
}

/** contactEvent and statusAfter in SQL: `reported` is the "NodeStatus" the agent sent, or NULL. */
export function statusAfterContactSql(current: Prisma.Sql, reported: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`(CASE ${reported}
    WHEN ${Online}::"NodeStatus" THEN ${statusAfterSql(current, contactEvent(Online))}
    WHEN ${Busy}::"NodeStatus" THEN ${statusAfterSql(current, contactEvent(Busy))}
    ELSE ${statusAfterSql(current, contactEvent(null))} END)`;
}

export interface NodeMove {
  nodeId: string;
  from: NodeStatus;
  to: NodeStatus;
}

/**
 * Moves one node by `event`, under its row lock, and writes `data` with it (the node's other
 * columns that change with the event). Answers the status before and after, for publishing.
 */
export async function moveNode(tx: Tx, nodeId: string, event: NodeEvent, data: Prisma.RenderNodeUpdateInput = {}): Promise<NodeMove> {
  const [row] = await tx.$queryRaw<Array<{ from: NodeStatus; to: NodeStatus }>>`
    UPDATE render_nodes n SET status = ${statusAfterSql(Prisma.sql`p.status`, event)}
    FROM (SELECT id, status FROM render_nodes WHERE id = ${nodeId}::uuid FOR UPDATE) p
    WHERE n.id = p.id
    RETURNING p.status::text AS "from", n.status::text AS "to"`;
  if (!row) throw new Error(`Render node ${nodeId} does not exist`);
  if (Object.keys(data).length > 0) await tx.renderNode.update({ where: { id: nodeId }, data });
  return { nodeId, ...row };
}

/** After commit: tells status subscribers of each move that changed a node's status. */
export async function publishNodeMoves(bus: Pick<EventBus, 'publish'>, moves: Iterable<NodeMove | null>): Promise<void> {
  for (const move of moves) {
    if (move && move.from !== move.to) await publishNodeStatusChanged(bus, { nodeId: move.nodeId, status: move.to });
  }
}

/** Nodes whose agent counts as running at `now`. */
export function aliveWhere(now: Date): Prisma.RenderNodeWhereInput {
  return { status: { in: [...LIVE_STATES] }, lastHeartbeatAt: { gt: heartbeatDeadline(now) } };
}

/** Live nodes whose agent has been silent too long at `now`: the heartbeat sweep's to lose. */
export function silentWhere(now: Date): Prisma.RenderNodeWhereInput {
  return { status: { in: [...LIVE_STATES] }, lastHeartbeatAt: { lt: heartbeatDeadline(now) } };
}

/** Nodes that may be given new work at `now`, busy or not: placement's candidates and the fleet chunk sizes follow. */
export function availableWhere(now: Date): Prisma.RenderNodeWhereInput {
  return {
    ...aliveWhere(now),
    isActive: true,
    acceptsNewJobs: true,
    consecutiveFailures: { lt: RESTART_AFTER_CONSECUTIVE_FAILURES },
    OR: [{ nextMaintenanceAt: null }, { nextMaintenanceAt: { gt: new Date(now.getTime() + MAINTENANCE_LEAD_MS) } }],
  };
}

/**
 * How many nodes are available for a job needing this After Effects version (all of them when it
 * names none), as placement matches versions: the fleet its chunks are cut for (chunking.ts).
 */
export async function nodesAvailableFor(tx: Tx, now: Date, aeVersion: string | null): Promise<number> {
  const runsVersion: Prisma.RenderNodeWhereInput =
    aeVersion === null ? {} : { OR: [{ currentAeVersion: aeVersion }, { availableAeVersions: { has: aeVersion } }] };
  return tx.renderNode.count({ where: { AND: [availableWhere(now), runsVersion] } });
}

function heartbeatDeadline(now: Date): Date {
  return new Date(now.getTime() - HEARTBEAT_TIMEOUT_MS);
}
