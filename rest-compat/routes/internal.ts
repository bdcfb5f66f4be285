// Routes the node agents call. Each is signed (see the NodeHmac scheme in openapi.yaml).
import type { RestRoute } from '../route.ts';

export const internalRoutes: RestRoute[] = [
  {
    method: 'POST',
    url: '/internal/nodes/:node_id/online',
    door: 'agent',
    status: 200,
    async handle({ actor, params, body }, { nodes }) {
      const answer = await nodes.online(actor, params.node_id ?? '', body as never);
      return { acknowledged: true, next_heartbeat_in_sec: answer.nextHeartbeatInSec };
    },
  },
  {
    method: 'POST',
    url: '/internal/nodes/:node_id/heartbeat',
    door: 'agent',
    status: 200,
    async handle({ actor, params, body }, { nodes }) {
      const answer = await nodes.heartbeat(actor, params.node_id ?? '', body as never);
      return { next_heartbeat_in_sec: answer.nextHeartbeatInSec, pending_commands: answer.pendingCommands };
    },
  },
];
