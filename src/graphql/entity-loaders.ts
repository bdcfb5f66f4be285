// Federation references resolved in batches. The gateway sends every reference of a plan step in
// one `_entities` call, and @apollo/subgraph asks for each of them in the same tick, so a loader
// per request and type turns them into one query of that type's service (and a field of those
// entities into one query for all of them: external.ts). What the caller may not see is left out
// by the service and answered as not found, as the type's own query answers it.
import { queryFromInfo } from '@pothos/plugin-prisma';
import DataLoader from 'dataloader';
import type { GraphQLResolveInfo } from 'graphql';
import { NotFoundError } from '../domain/errors.ts';
import type { GraphQLContext } from './builder.ts';

/** The include/select that Pothos plans for the fields asked of a Prisma-backed entity. */
export type EntityQuery = ReturnType<typeof queryFromInfo<undefined, undefined, false>>;

type LoadMany<T> = (ctx: GraphQLContext, ids: string[], query: EntityQuery) => Promise<T[]>;

/**
 * DataLoaders per request and key: the parents of one field resolve in the same tick, so one
 * query answers them all. `batch` is taken from the call that creates a key's loader; the key
 * must name everything it depends on (two fields of one request may ask different columns).
 */
export function loadersPerRequest<V, K = string>() {
  const loaders = new WeakMap<GraphQLContext, Map<string, DataLoader<K, V>>>();
  return (ctx: GraphQLContext, key: string, batch: (keys: readonly K[]) => Promise<(V | Error)[]>): DataLoader<K, V> => {
    let byKey = loaders.get(ctx);
    if (!byKey) loaders.set(ctx, (byKey = new Map()));
    let loader = byKey.get(key);
    // A graphql-ws context lives as long as its subscription: rows are never reused from an
    // earlier event, only batched within one tick.
    if (!loader) byKey.set(key, (loader = new DataLoader(batch, { cache: false })));
    return loader;
  };
}

/**
 * A reference resolver for one entity type: `what` names it in not-found errors. With `prismaType`
 * the query carries the relations the request selects, so the rows need no second read for them.
 */
export function entityLoader<T extends { id: string }>(what: string, loadMany: LoadMany<T>, prismaType?: string) {
  const loaderFor = loadersPerRequest<T>();
  return ({ id }: { id: string }, ctx: GraphQLContext, info: GraphQLResolveInfo): Promise<T> => {
    const query = prismaType ? queryFromInfo({ context: ctx, info, typeName: prismaType }) : {};
    const loader = loaderFor(ctx, JSON.stringify(query), async (ids) => {
      const found = new Map((await loadMany(ctx, [...ids], query)).map((row) => [row.id, row]));
      // PostgreSQL prints UUIDs in lower case, whatever case the reference used.
      return ids.map((key) => found.get(key.toLowerCase()) ?? new NotFoundError(what, key));
    });
    return loader.load(id);
  };
}
