import type { RestRoute } from '../route.ts';
import { toRestSnapshot, toRestSnapshotRequested } from '../serializers.ts';

export const snapshotRoutes: RestRoute[] = [
  {
    method: 'POST',
    url: '/snapshots',
    door: 'caller',
    status: 202,
    async handle({ actor, body }, { snapshots }) {
      return toRestSnapshotRequested(await snapshots.request(actor, body as never));
    },
  },
  {
    method: 'GET',
    url: '/snapshots/:snapshot_id',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { snapshots }) {
      return toRestSnapshot(await snapshots.get(actor, params.snapshot_id ?? ''));
    },
  },
];
