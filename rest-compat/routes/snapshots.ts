import type { SnapshotView } from '../../src/domain/snapshots/snapshot-service.ts';
import type { RestRoute } from '../route.ts';

const iso = (date: Date | null) => (date ? date.toISOString() : null);

function toRestSnapshot(snapshot: SnapshotView) {
  return {
    id: snapshot.id,
    saved_project_id: snapshot.savedProjectId,
    scene_key: snapshot.sceneKey,
    frame_number: snapshot.frameNumber,
    status: snapshot.status,
    image_url: snapshot.imageUrl,
    thumbnail_url: snapshot.thumbnailUrl,
    width: snapshot.width,
    height: snapshot.height,
    duration_ms: snapshot.durationMs,
    expires_at: iso(snapshot.expiresAt),
    requested_at: iso(snapshot.requestedAt),
    completed_at: iso(snapshot.completedAt),
  };
}

export const snapshotRoutes: RestRoute[] = [
  {
    method: 'POST',
    url: '/snapshots',
    door: 'caller',
    status: 202,
    async handle({ actor, body }, { snapshots }) {
      const snapshot = await snapshots.request(actor, body as never);
      return {
        snapshot_id: snapshot.id,
        status: snapshot.status,
        image_url: snapshot.imageUrl,
        thumbnail_url: snapshot.thumbnailUrl,
        expires_at: iso(snapshot.expiresAt),
      };
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
