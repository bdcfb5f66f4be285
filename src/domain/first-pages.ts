// The first page of many owners' lists at once. A gateway resolving `_entities` asks for the jobs
// or the exports of a hundred users in one request; a query per user was a hundred round trips,
// and one statement that ranks every owner's rows is one.
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import { groupedBy } from './grouping.ts';
import { uuidsAmong } from './validation.ts';

/** The owners a list is kept for, and their column, the same in every table listed by owner. */
export type Owner = 'userId' | 'savedProjectId';
const OWNER_COLUMNS: Record<Owner, Prisma.Sql> = { userId: Prisma.sql`user_id`, savedProjectId: Prisma.sql`saved_project_id` };

export interface FirstPagesQuery {
  table: Prisma.Sql;
  owner: Owner;
  ownerIds: readonly string[];
  /** The listing's order in SQL, the same as its Prisma `orderBy`. */
  order: Prisma.Sql;
  /** The listing's own filters in SQL (who may read, a status): the same rows as its Prisma `where`. */
  where: Prisma.Sql;
  take: number;
}

/**
 * The first `take` rows of each owner, keyed by the owner's id as PostgreSQL prints it: one
 * statement ranks them for every owner at once, then `read` reads those rows (with whatever
 * relations the request selects), in the listing's order.
 */
export async function firstPages<R extends Record<Owner, string>>(
  prisma: PrismaClient,
  query: FirstPagesQuery,
  read: (ids: string[]) => Promise<R[]>,
): Promise<Map<string, R[]>> {
  return groupedBy(await read(await firstPageIds(prisma, query)), (row) => row[query.owner]);
}

async function firstPageIds(prisma: PrismaClient, query: FirstPagesQuery): Promise<string[]> {
  const { table, order, where, take } = query;
  const owner = OWNER_COLUMNS[query.owner];
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    SELECT id FROM (
      SELECT id, row_number() OVER (PARTITION BY ${owner} ORDER BY ${order}) AS rank
      FROM ${table}
      WHERE ${owner} = ANY(${uuidsAmong(query.ownerIds)}::uuid[]) AND ${where}
    ) ranked
    WHERE rank <= ${take}`;
  return rows.map((row) => row.id);
}

/**
 * What a connection's query selects, without its page (the ranking applied it), and with the owner
 * column the rows are grouped by.
 */
export function shapeWithOwner<S, I>(args: { select?: S; include?: I } | undefined, owner: Owner): { select?: S; include?: I } {
  return args?.select ? { select: { ...args.select, [owner]: true } } : { include: args?.include };
}

/** `readScope`'s filter in SQL: every row, or the reader's own. */
export function readableSql(scope: { userId?: string }): Prisma.Sql {
  return scope.userId === undefined ? Prisma.sql`TRUE` : Prisma.sql`user_id = ${scope.userId}::uuid`;
}
