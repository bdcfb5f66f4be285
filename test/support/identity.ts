// A stand-in for the identity subgraph, serving router/identity.graphql (the SDL the supergraph is
// composed from): the caller from the forwarded Authorization, and users by id, each with an
// email made from the id. The gateway tests put it beside this subgraph in the supergraph.
import { readFile } from 'node:fs/promises';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { decodeJwt } from 'jose';
import { IDENTITY_SCHEMA_PATH } from '../../scripts/compose-supergraph.ts';

interface IdentityContext {
  authorization?: string;
}

/** The email the stand-in gives a user. */
export const emailOf = (userId: string) => `${userId.slice(0, 8)}@example.com`;

export async function startIdentitySubgraph(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = new ApolloServer<IdentityContext>({
    schema: buildSubgraphSchema([
      {
        typeDefs: parse(await readFile(IDENTITY_SCHEMA_PATH, 'utf8')),
        resolvers: {
          Query: {
            me: (_root: unknown, _args: unknown, ctx: IdentityContext) =>
              ctx.authorization ? { id: decodeJwt(ctx.authorization.replace(/^Bearer /i, '')).sub } : null,
            users: (_root: unknown, args: { ids: string[] }) => args.ids.map((id) => ({ id })),
          },
          User: { email: (user: { id: string }) => emailOf(user.id) },
        },
      },
    ]),
  });
  const { url } = await startStandaloneServer(server, {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => ({ authorization: req.headers.authorization }),
  });
  return { url, stop: () => server.stop() };
}
