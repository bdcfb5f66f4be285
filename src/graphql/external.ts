// Entities other subgraphs own (users from identity, saved projects from studio), extended with
// what this subgraph knows about them. The same visibility rules apply: through a user or a
// project, a caller still sees only the jobs and exports they may see.
import type { Prisma } from '../generated/prisma/client.ts';
import type { JobStep } from '../generated/prisma/enums.ts';
import { NEWEST_EXPORTS_FIRST } from '../domain/exports/export-service.ts';
import { NEWEST_JOBS_FIRST } from '../domain/jobs/job-service.ts';
import { builder, type GraphQLContext } from './builder.ts';
import { JobStepEnum } from './enums.ts';
import { loadersPerRequest } from './entity-loaders.ts';
import { ExportRef } from './export.ts';
import { RenderJobRef } from './render-job.ts';

/** A Prisma connection's query: a page of the model's rows, with what the request selects of them. */
interface PageQuery<Unique, Include, Select> {
  cursor?: Unique;
  skip?: number;
  take: number;
  include?: Include;
  select?: Select;
}
type JobsPage = PageQuery<Prisma.RenderJobWhereUniqueInput, Prisma.RenderJobInclude, Prisma.RenderJobSelect>;
type ExportsPage = PageQuery<Prisma.ExportWhereUniqueInput, Prisma.ExportInclude, Prisma.ExportSelect>;

/**
 * A connection of an entity's rows whose first page is read together for every entity of the
 * request that asks for the same page and filters: a gateway asks it of many entities at once.
 * A later page starts from a row of one entity's list, so each is a query of its own (`onePage`).
 */
function pagedByOwner<Row, Q extends PageQuery<unknown, unknown, unknown>, F>(
  firstPages: (ctx: GraphQLContext, ownerIds: readonly string[], query: Q, filters: F) => Promise<Map<string, Row[]>>,
  onePage: (ctx: GraphQLContext, ownerId: string, query: Q, filters: F) => Promise<Row[]>,
) {
  const loaders = loadersPerRequest<Row[]>();
  return (ctx: GraphQLContext, ownerId: string, query: Q, filters: F): Promise<Row[]> => {
    if (query.cursor !== undefined || query.skip || query.take <= 0) return onePage(ctx, ownerId, query, filters);
    const loader = loaders(ctx, JSON.stringify([query, filters]), async (ids) => {
      const owners = await firstPages(ctx, ids, query, filters);
      // PostgreSQL prints UUIDs in lower case, whatever case the reference used.
      return ids.map((id) => owners.get(id.toLowerCase()) ?? []);
    });
    return loader.load(ownerId);
  };
}

function extendWithRenders(entity: 'User' | 'SavedProject', field: 'userId' | 'savedProjectId') {
  const jobsOf = pagedByOwner(
    (ctx, ids, query: JobsPage, status: JobStep | undefined) =>
      ctx.services.jobs.newestOfOwners(ctx.actor, field, ids, { status, take: query.take }, query),
    (ctx, id, query, status) =>
      ctx.prisma.renderJob.findMany({
        ...query,
        where: { AND: [ctx.services.jobs.listWhere(ctx.actor, status), { [field]: id }] },
        orderBy: NEWEST_JOBS_FIRST,
      }),
  );
  const exportsOf = pagedByOwner(
    (ctx, ids, query: ExportsPage, _filters: null) =>
      ctx.services.exports.newestOfOwners(ctx.actor, field, ids, query.take, query),
    (ctx, id, query) =>
      ctx.prisma.export.findMany({
        ...query,
        where: { AND: [ctx.services.exports.visibleTo(ctx.actor), { [field]: id }] },
        orderBy: NEWEST_EXPORTS_FIRST,
      }),
  );
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
        resolve: (query, parent, args, ctx) => jobsOf(ctx, parent.id, query, args.status ?? undefined),
      }),
      exports: t.prismaConnection({
        type: ExportRef,
        cursor: 'id',
        description: 'Exports, newest first, that the caller may see.',
        defaultSize: 20,
        maxSize: 100,
        resolve: (query, parent, _args, ctx) => exportsOf(ctx, parent.id, query, null),
      }),
    }),
  });
}

extendWithRenders('User', 'userId');
extendWithRenders('SavedProject', 'savedProjectId');
