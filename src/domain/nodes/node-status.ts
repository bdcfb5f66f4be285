// What a node's status becomes when something other than an administrator moves it. Maintenance
// and Updating are set by admins and rollouts and end only by their hand (or the rollout's
// report): neither the agent's contact nor the end of a piece of work may end them, or a node
// put aside while it rendered would be given new work the moment its chunk finished.
import { NodeStatus } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';

export const ADMINISTRATIVE_STATES: readonly NodeStatus[] = [NodeStatus.Maintenance, NodeStatus.Updating];

const isAdministrative = (status: NodeStatus) => ADMINISTRATIVE_STATES.includes(status);

/** After the agent's heartbeat, which may say whether it is rendering. */
export function statusAfterContact(current: NodeStatus, reported: NodeStatus | undefined): NodeStatus {
  if (isAdministrative(current)) return current;
  return reported ?? (current === NodeStatus.Busy ? NodeStatus.Busy : NodeStatus.Online);
}

/** After the node's work ended (completed, failed, taken back): free for more, unless put aside. */
export function statusAfterWork(current: NodeStatus): NodeStatus {
  return isAdministrative(current) ? current : NodeStatus.Online;
}

/** The node's status once its work ended, read under the transaction's view of the row. */
export async function statusAfterWorkOf(tx: Tx, nodeId: string): Promise<NodeStatus> {
  const { status } = await tx.renderNode.findUniqueOrThrow({ where: { id: nodeId }, select: { status: true } });
  return statusAfterWork(status);
}
