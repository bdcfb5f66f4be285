// Node software updates: what admins publish and roll out, and what agents report back.
import { rolledOutNodeIds, WITH_APPLIED_TARGETS, WITH_TARGETS } from '../../src/domain/updates/rollout-service.ts';
import type { RestRoute } from '../route.ts';
import { toRestNodeUpdate, toRestRollout } from '../serializers.ts';

export const nodeUpdateRoutes: RestRoute[] = [
  {
    method: 'GET',
    url: '/node-updates',
    door: 'caller',
    status: 200,
    async handle({ actor }, { updates }) {
      const list = await updates.listUpdates(actor, { include: WITH_APPLIED_TARGETS });
      return { data: list.map((update) => toRestNodeUpdate(update, rolledOutNodeIds(update))) };
    },
  },
  {
    method: 'POST',
    url: '/node-updates',
    door: 'caller',
    status: 201,
    async handle({ actor, body }, { updates }) {
      return toRestNodeUpdate(await updates.createUpdate(actor, body as never), []);
    },
  },
  {
    method: 'POST',
    url: '/node-updates/:update_id/rollout',
    door: 'caller',
    status: 202,
    async handle({ actor, params, body }, { updates }) {
      return toRestRollout(await updates.rollout(actor, params.update_id ?? '', body as never, { include: WITH_TARGETS }));
    },
  },
  {
    method: 'POST',
    url: '/internal/nodes/:node_id/updates/:update_id/applied',
    door: 'agent',
    status: 204,
    async handle({ actor, params, body }, { updates }) {
      await updates.applied(actor, params.node_id ?? '', params.update_id ?? '', body as never);
    },
  },
  {
    method: 'POST',
    url: '/internal/nodes/:node_id/updates/:update_id/failed',
    door: 'agent',
    status: 204,
    async handle({ actor, params, body }, { updates }) {
      await updates.failed(actor, params.node_id ?? '', params.update_id ?? '', body as never);
    },
  },
];
