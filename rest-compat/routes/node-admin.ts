// Admin operations on one node besides registering and reading it (those are in nodes.ts).
import type { RestRoute } from '../route.ts';
import { toRestNode, toRestNodeCrash, toRestNodeDetail, toRestNodeHealth, toRestNodeHealthSample } from '../serializers.ts';
import { nodeDetail, templateCount } from './nodes.ts';

export const nodeAdminRoutes: RestRoute[] = [
  {
    method: 'PATCH',
    url: '/nodes/:node_id',
    door: 'caller',
    status: 200,
    async handle({ actor, params, body }, { nodeAdmin }) {
      return toRestNode(await nodeAdmin.update(actor, params.node_id ?? '', body as never, { include: templateCount }));
    },
  },
  {
    method: 'POST',
    url: '/nodes/:node_id/maintenance',
    door: 'caller',
    status: 200,
    async handle({ actor, params, body }, { nodeAdmin }) {
      return toRestNodeDetail(await nodeAdmin.startMaintenance(actor, params.node_id ?? '', (body ?? {}) as never, { include: nodeDetail }));
    },
  },
  {
    method: 'DELETE',
    url: '/nodes/:node_id/maintenance',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { nodeAdmin }) {
      return toRestNodeDetail(await nodeAdmin.endMaintenance(actor, params.node_id ?? '', { include: nodeDetail }));
    },
  },
  {
    method: 'POST',
    url: '/nodes/:node_id/restart',
    door: 'caller',
    status: 202,
    async handle({ actor, params }, { nodeAdmin }) {
      const result = await nodeAdmin.restart(actor, params.node_id ?? '');
      return { command_id: result.commandId, recut_chunks: result.recutChunks };
    },
  },
  {
    method: 'POST',
    url: '/nodes/:node_id/release',
    door: 'caller',
    status: 204,
    async handle({ actor, params }, { nodeAdmin }) {
      await nodeAdmin.release(actor, params.node_id ?? '');
    },
  },
  {
    method: 'POST',
    url: '/nodes/:node_id/close-ae',
    door: 'caller',
    status: 204,
    async handle({ actor, params }, { nodeAdmin }) {
      await nodeAdmin.closeAe(actor, params.node_id ?? '');
    },
  },
  {
    method: 'GET',
    url: '/nodes/:node_id/health',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { nodeAdmin }) {
      return toRestNodeHealth(await nodeAdmin.health(actor, params.node_id ?? ''));
    },
  },
  {
    method: 'GET',
    url: '/nodes/:node_id/health/history',
    door: 'caller',
    status: 200,
    async handle({ actor, params, query }, { nodeAdmin }) {
      const samples = await nodeAdmin.healthHistory(actor, params.node_id ?? '', { from: query.from as never, to: query.to as never });
      return { data: samples.map(toRestNodeHealthSample) };
    },
  },
  {
    method: 'GET',
    url: '/nodes/:node_id/crashes',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { nodeAdmin }) {
      return { data: (await nodeAdmin.crashes(actor, params.node_id ?? '')).map(toRestNodeCrash) };
    },
  },
];
