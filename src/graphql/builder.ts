import SchemaBuilder from '@pothos/core';
import DirectivesPlugin from '@pothos/plugin-directives';
import ErrorsPlugin from '@pothos/plugin-errors';
import FederationPlugin from '@pothos/plugin-federation';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import { GraphQLScalarType } from 'graphql';
import { BigIntResolver, DateTimeResolver, JSONObjectResolver, UUIDResolver } from 'graphql-scalars';
import type { Actor } from '../domain/actor.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type PrismaTypes from '../generated/pothos-prisma-types.ts';
import { getDatamodel } from '../generated/pothos-prisma-types.ts';
import type { Services } from '../services.ts';

export interface GraphQLContext {
  actor: Actor;
  services: Services;
  prisma: PrismaClient;
  /** The HTTP request the operation came in, named in the logs and in masked errors. */
  requestId?: string;
}

export const builder = new SchemaBuilder<{
  PrismaTypes: PrismaTypes;
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    UUID: { Input: string; Output: string };
    BigInt: { Input: bigint | number; Output: bigint | number };
    JSONObject: { Input: Record<string, unknown>; Output: Record<string, unknown> };
  };
}>({
  // Errors wraps resolvers, so it goes before the plugins that add fields and directives.
  plugins: [ErrorsPlugin, PrismaPlugin, RelayPlugin, DirectivesPlugin, FederationPlugin],
  defaultFieldNullability: false,
  prisma: {
    // Resolved per request: tests and tools run several services, each with its own database.
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: false,
    nodesQueryOptions: false,
  },
  errors: {
    directResult: true,
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
// graphql-scalars compiles its pattern anew for every value it checks, and a listing answers with
// thousands of ids, every one read from a uuid column, whose text PostgreSQL prints in one form;
// a string of that form's length with its dashes in place (no pattern to run) is taken as one,
// and anything else still goes through the library's check.
const isCanonicalUuidShape = (value: string) =>
  value.length === 36 && value[8] === '-' && value[13] === '-' && value[18] === '-' && value[23] === '-';
const UUIDScalar = new GraphQLScalarType({
  ...UUIDResolver.toConfig(),
  serialize: (value) => (typeof value === 'string' && isCanonicalUuidShape(value) ? value : UUIDResolver.serialize(value)),
});

builder.addScalarType('UUID', UUIDScalar);
builder.addScalarType('BigInt', BigIntResolver);
builder.addScalarType('JSONObject', JSONObjectResolver);

/**
 * The `id` field of a Prisma object type whose type-level `select` reads `id`. In select mode
 * `t.expose` gives a field a `select` of its own, and the Prisma plugin wraps every such resolver
 * to look up, row by row, which query loaded the row; a listing of 50 jobs with their 600 chunks
 * spent a quarter of its CPU there. A column every row carries needs no lookup.
 */
export const idOfRow = { type: 'UUID', resolve: (row: { id: string }) => row.id } as const;

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
