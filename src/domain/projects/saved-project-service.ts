// The studio service tells this one the facts about saved projects that rendering needs
// (duration, voiceover, template md5, AE version). Submissions read them from here rather than
// trusting the caller, so a render is always priced from the studio's numbers when it has them.
import { z } from 'zod';
import type { PrismaClient } from '../../generated/prisma/client.ts';
import type { Actor } from '../actor.ts';
import { requireAdmin } from '../guards.ts';
import { parseInput, uuid } from '../validation.ts';
import { MAX_DURATION_SEC } from '../jobs/chunking.ts';

export const syncSavedProjectSchema = z.strictObject({
  ownerUserId: uuid.nullable().optional(),
  name: z.string().trim().min(1).max(200),
  durationSec: z.number().positive().max(MAX_DURATION_SEC),
  hasVoiceover: z.boolean().default(false),
  aepFileMd5: z
    .string()
    .regex(/^[a-f0-9]{32}$/i, 'must be an md5 hex digest')
    .transform((md5) => md5.toLowerCase())
    .nullable()
    .optional(),
  aeVersion: z.string().trim().min(1).max(40).nullable().optional(),
});
export type SyncSavedProjectInput = z.input<typeof syncSavedProjectSchema>;

export function createSavedProjectService({ prisma }: { prisma: PrismaClient }) {
  return {
    /** Creates or replaces the projection of one saved project (studio service or admin). */
    async sync(actor: Actor, id: string, input: SyncSavedProjectInput) {
      if (actor.kind !== 'service') requireAdmin(actor);
      const projectId = parseInput(uuid, id, 'saved project id');
      const data = parseInput(syncSavedProjectSchema, input, 'saved project');
      const fields = {
        ownerUserId: data.ownerUserId ?? null,
        name: data.name,
        durationSec: data.durationSec,
        hasVoiceover: data.hasVoiceover,
        aepFileMd5: data.aepFileMd5 ?? null,
        aeVersion: data.aeVersion ?? null,
      };
      return prisma.savedProject.upsert({ where: { id: projectId }, create: { id: projectId, ...fields }, update: fields });
    },
  };
}

export type SavedProjectService = ReturnType<typeof createSavedProjectService>;
