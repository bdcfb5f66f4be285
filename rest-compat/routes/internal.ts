// Routes the node agents call, each signed (the NodeHmac scheme in openapi.yaml); the protocol is
// described in docs/agent-protocol.md.
import type { RestRoute } from '../route.ts';

/** Largest encoded output an agent may upload in one request. */
export const OUTPUT_UPLOAD_LIMIT_BYTES = 2 * 1024 ** 3;
/** Largest snapshot image (a single still) an agent may upload. */
export const SNAPSHOT_UPLOAD_LIMIT_BYTES = 64 * 1024 ** 2;

const agent = { door: 'agent' } as const;

export const internalRoutes: RestRoute[] = [
  {
    ...agent,
    method: 'POST',
    url: '/internal/nodes/:node_id/online',
    status: 200,
    async handle({ actor, params, body }, { nodes }) {
      const answer = await nodes.online(actor, params.node_id ?? '', body as never);
      return { acknowledged: true, next_heartbeat_in_sec: answer.nextHeartbeatInSec };
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/nodes/:node_id/heartbeat',
    status: 200,
    async handle({ actor, params, body }, { nodes }) {
      const answer = await nodes.heartbeat(actor, params.node_id ?? '', body as never);
      return { next_heartbeat_in_sec: answer.nextHeartbeatInSec, pending_commands: answer.pendingCommands };
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/nodes/:node_id/commands/:command_id/ack',
    status: 204,
    async handle({ actor, params }, { agents }) {
      await agents.acknowledge(actor, params.node_id ?? '', params.command_id ?? '');
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/nodes/:node_id/cache-update',
    status: 204,
    async handle({ actor, params, body }, { agents }) {
      await agents.cacheUpdate(actor, params.node_id ?? '', body as never);
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/render/jobs/:job_id/frames',
    status: 204,
    async handle({ actor, params, body }, { agents }) {
      await agents.reportFrame(actor, params.job_id ?? '', body as never);
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/render/jobs/:job_id/chunks/:frame_job_id/complete',
    status: 204,
    async handle({ actor, params, body }, { agents }) {
      await agents.completeChunk(actor, params.job_id ?? '', params.frame_job_id ?? '', body as never);
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/render/jobs/:job_id/chunks/:frame_job_id/fail',
    status: 204,
    async handle({ actor, params, body }, { agents }) {
      await agents.failChunk(actor, params.job_id ?? '', params.frame_job_id ?? '', body as never);
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/render/jobs/:job_id/crash',
    status: 200,
    async handle({ actor, params, body }, { agents }) {
      const decision = await agents.reportCrash(actor, params.job_id ?? '', body as never);
      return { action_recommended: decision.actionRecommended, reassigned_to_node_id: decision.reassignedToNodeId };
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/render/jobs/:job_id/replica-ready',
    status: 204,
    async handle({ actor, params, body }, { agents }) {
      await agents.replicaReady(actor, params.job_id ?? '', body as never);
    },
  },
  {
    ...agent,
    method: 'PUT',
    url: '/internal/render/jobs/:job_id/outputs/:format',
    status: 204,
    accepts: 'bytes',
    bodyLimit: OUTPUT_UPLOAD_LIMIT_BYTES,
    async handle({ actor, params, query, bytes }, { agents }) {
      await agents.uploadOutput(actor, params.job_id ?? '', params.format ?? '', query.lease, bytes ?? Buffer.alloc(0));
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/render/jobs/:job_id/encoded',
    status: 204,
    async handle({ actor, params, body }, { agents }) {
      await agents.encoded(actor, params.job_id ?? '', body as never);
    },
  },
  ...(['image', 'thumbnail'] as const).map(
    (file): RestRoute => ({
      ...agent,
      method: 'PUT',
      url: `/internal/snapshots/:snapshot_id/${file}`,
      status: 204,
      accepts: 'bytes',
      bodyLimit: SNAPSHOT_UPLOAD_LIMIT_BYTES,
      async handle({ actor, params, query, bytes }, { snapshots }) {
        await snapshots.upload(actor, params.snapshot_id ?? '', file, query.lease, bytes ?? Buffer.alloc(0));
      },
    }),
  ),
  {
    ...agent,
    method: 'POST',
    url: '/internal/snapshots/:snapshot_id/complete',
    status: 204,
    async handle({ actor, params, body }, { snapshots }) {
      await snapshots.complete(actor, params.snapshot_id ?? '', body as never);
    },
  },
  {
    ...agent,
    method: 'POST',
    url: '/internal/snapshots/:snapshot_id/fail',
    status: 204,
    async handle({ actor, params, body }, { snapshots }) {
      await snapshots.fail(actor, params.snapshot_id ?? '', body as never);
    },
  },
];
