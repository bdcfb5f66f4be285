// The templates a node holds in its cache, which placement prefers and admins see.
import type { Prisma } from '../../generated/prisma/client.ts';

/** Templates a node can render from its cache right now (a failed download does not count). */
export const HELD_TEMPLATES = { state: { in: ['Downloaded', 'Verified'] } } satisfies Prisma.NodeTemplateCacheWhereInput;
