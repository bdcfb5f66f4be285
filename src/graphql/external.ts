// Entities other subgraphs own (users from identity, saved projects from studio), extended with
// what this subgraph knows about them. The same visibility rules apply: through a user or a
// project, a caller still sees only the jobs and exports they may see.
import type { Prisma, RenderJob } from '../generated/prisma/client.ts';
import { NEWEST_EXPORTS_FIRST } from '../domain/exports/export-service.ts';
import { NEWEST_JOBS_FIRST } from '../domain/jobs/job-service.ts';
import { builder } from './builder.ts';
import { JobStepEnum } from './enums.ts';
import { loadersPerRequest } from './entity-loaders.ts';
import { ExportRef } from './export.ts';
import { RenderJobRef } from './render-job.ts';

function extendWithRenders(entity: 'User' | 'SavedProject', field: 'userId' | 'savedProjectId') {
  const newestJobs = loadersPerRequest<RenderJob[]>();
  builder.externalRef(entity, builder.selection<{ id: string }>('id')).implement({
    fields: (t) => ({
      id: t.exposeID('id'),
      renderJobs: t.prismaConnection({
        type: RenderJobRef,
        cursor: 'id',
        description: 'Render jobs, newest first, that the caller may see.',
        args: { status: t.arg({ type: JobStepEnum, required: false }) },
        defaultSize: 20,
        maxSize: 100,
        resolve: (query, parent, args, ctx) => {
          const status = args.status ?? undefined;
          // A first page (no cursor) is what a gateway asks of many entities at once: one query
          // for all of them. Later pages start from a row of one entity's list, so each is its own.
          if (query.cursor === undefined && !query.skip && query.take > 0) {
            const loader = newestJobs(ctx, JSON.stringify([query, status]), async (ids) => {
              const byOwner = await ctx.services.jobs.newestOfOwners(ctx.actor, field, ids, { status, take: query.take }, query);
              // PostgreSQL prints UUIDs in lower case, whatever case the reference used.
              return ids.map((id) => byOwner.get(id.toLowerCase()) ?? []);
            });
            return loader.load(parent.id);
          }
          return ctx.prisma.renderJob.findMany({
            ...query,
            where: { AND: [ctx.services.jobs.listWhere(ctx.actor, status), { [field]: parent.id }] },
            orderBy: NEWEST_JOBS_FIRST,
          });
        },
      }),
      exports: t.prismaConnection({
        type: ExportRef,
        cursor: 'id',
        description: 'Exports, newest first, that the caller may see.',
        defaultSize: 20,
        maxSize: 100,
        resolve: (query, parent, _args, ctx) =>
          ctx.prisma.export.findMany({
            ...query,
            where: { AND: [ctx.services.exports.visibleTo(ctx.actor), { [field]: parent.id } as Prisma.ExportWhereInput] },
            orderBy: NEWEST_EXPORTS_FIRST,
          }),
      }),
    }),
  });
}

extendWithRenders('User', 'userId');
extendWithRenders('SavedProject', 'savedProjectId');
