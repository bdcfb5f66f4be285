import type { SavedProject } from '../../src/generated/prisma/client.ts';
import type { RestRoute } from '../route.ts';

function toRestSavedProject(project: SavedProject) {
  return {
    id: project.id,
    owner_user_id: project.ownerUserId,
    name: project.name,
    duration_sec: project.durationSec,
    has_voiceover: project.hasVoiceover,
    aep_file_md5: project.aepFileMd5,
    ae_version: project.aeVersion,
    updated_at: project.updatedAt.toISOString(),
  };
}

export const savedProjectRoutes: RestRoute[] = [
  {
    method: 'PUT',
    url: '/saved-projects/:saved_project_id',
    door: 'caller',
    status: 200,
    async handle({ actor, params, body }, { savedProjects }) {
      return toRestSavedProject(await savedProjects.sync(actor, params.saved_project_id ?? '', body as never));
    },
  },
];
