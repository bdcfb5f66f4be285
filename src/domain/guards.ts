// Authorization checks shared by services: anonymous callers are told to authenticate (401),
// authenticated callers of the wrong kind are refused (403).
import type { Actor } from './actor.ts';
import { ForbiddenError, UnauthenticatedError } from './errors.ts';

export type UserActor = Extract<Actor, { kind: 'user' }>;
export type ServiceActor = Extract<Actor, { kind: 'service' }>;
export type NodeActor = Extract<Actor, { kind: 'node' }>;

function refuseAnonymous(actor: Actor): void {
  if (actor.kind === 'anonymous') throw new UnauthenticatedError('Authentication is required');
}

export function requireUser(actor: Actor): UserActor {
  refuseAnonymous(actor);
  if (actor.kind !== 'user') throw new ForbiddenError('Only users may do this');
  return actor;
}

export function requireAdmin(actor: Actor): UserActor {
  refuseAnonymous(actor);
  if (actor.kind !== 'user' || !actor.isAdmin) throw new ForbiddenError('Only administrators may do this');
  return actor;
}

/** With nodeId, also requires the caller to be that node (the id in the path or body). */
export function requireNode(actor: Actor, nodeId?: string): NodeActor {
  refuseAnonymous(actor);
  if (actor.kind !== 'node') throw new ForbiddenError('Only render nodes may do this');
  if (nodeId !== undefined && nodeId.toLowerCase() !== actor.nodeId.toLowerCase()) {
    throw new ForbiddenError('X-Node-Id does not match the node named in the request', {
      authenticated_node_id: actor.nodeId,
      requested_node_id: nodeId,
    });
  }
  return actor;
}

export function requireUserOrService(actor: Actor): UserActor | ServiceActor {
  refuseAnonymous(actor);
  if (actor.kind !== 'user' && actor.kind !== 'service') {
    throw new ForbiddenError('Only users and services may do this');
  }
  return actor;
}

/**
 * Whose jobs, exports and snapshots the actor may read, as a filter on their owner: users their
 * own; admins and calling services (notifications, billing, support tools) every user's. It
 * decides reads alone: a service changes nothing of a user's, as requireUser refuses it.
 */
export function readScope(actor: Actor): { userId?: string } {
  const reader = requireUserOrService(actor);
  return reader.kind === 'service' || reader.isAdmin ? {} : { userId: reader.userId };
}
