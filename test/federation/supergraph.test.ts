// This subgraph composed with a stand-in identity subgraph (@apollo/composition) and served by
// @apollo/gateway: a query that starts at the identity's User and crosses into render jobs.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBGRAPH_SCHEMA_PATH } from '../../scripts/print-schema.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

const IDENTITY_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  type User @key(fields: "id") { id: ID! email: String! }
  type Query { me: User }
`;

interface GatewayContext {
  authorization?: string;
}

let t: TestApp;
const servers: ApolloServer<GatewayContext>[] = [];
let gatewayUrl: string;
let owner: { id: string; token: string };
let jobId: string;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = { id: randomUUID(), token: '' };
  owner.token = await t.token(owner.id);
  const submitted = await t.rest('POST', '/v1/renders', {
    token: owner.token,
    body: { saved_project_id: randomUUID(), quality: 'Low', resolution: 'HD', price_type: 'Free', duration_sec: 3 },
  });
  jobId = submitted.body.id;

  const identity = new ApolloServer<GatewayContext>({
    schema: buildSubgraphSchema([
      {
      typeDefs: parse(IDENTITY_SDL),
      resolvers: {
        Query: {
          me: (_root: unknown, _args: unknown, ctx: GatewayContext) =>
            ctx.authorization ? { id: decodeJwt(ctx.authorization.replace(/^Bearer /, '')).sub } : null,
        },
        User: { email: (user: { id: string }) => `${user.id.slice(0, 8)}@example.com` },
      },
      },
    ]),
  });
  servers.push(identity);
  const identityUrl = (
    await startStandaloneServer(identity, {
      listen: { port: 0, host: '127.0.0.1' },
      context: async ({ req }) => ({ authorization: req.headers.authorization }),
    })
  ).url;

  const composed = composeServices([
    { name: 'identity', typeDefs: parse(IDENTITY_SDL), url: identityUrl },
    { name: 'render', typeDefs: parse(await readFile(SUBGRAPH_SCHEMA_PATH, 'utf8')), url: `${t.url}/graphql` },
  ]);
  expect(composed.errors ?? []).toEqual([]);
  const gateway = new ApolloServer<GatewayContext>({
    gateway: new ApolloGateway({
      supergraphSdl: composed.supergraphSdl,
      buildService: ({ url }) =>
        new RemoteGraphQLDataSource<GatewayContext>({
          url,
          willSendRequest({ request, context }) {
            if (context.authorization) request.http?.headers.set('authorization', context.authorization);
          },
        }),
    }),
  });
  servers.push(gateway);
  gatewayUrl = (
    await startStandaloneServer(gateway, {
      listen: { port: 0, host: '127.0.0.1' },
      context: async ({ req }) => ({ authorization: req.headers.authorization }),
    })
  ).url;
}, 60_000);

afterAll(async () => {
  for (const server of servers) await server.stop();
  await t.close();
});

async function throughGateway(query: string, token: string) {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { data?: any; errors?: { message: string }[] };
}

describe('the supergraph', () => {
  it("answers a query that starts at identity's User and gets the user's render jobs from this subgraph", async () => {
    const result = await throughGateway('{ me { id email renderJobs(first: 5) { edges { node { id step priceType } } } } }', owner.token);
    expect(result.errors).toBeUndefined();
    expect(result.data.me).toEqual({
      id: owner.id,
      email: `${owner.id.slice(0, 8)}@example.com`,
      renderJobs: { edges: [{ node: { id: jobId, step: 'Queued', priceType: 'Free' } }] },
    });
  });

  it("shows another user nothing of this user's jobs through the entity", async () => {
    const stranger = await t.token(randomUUID());
    const result = await throughGateway('{ me { renderJobs(first: 5) { edges { node { id } } } } }', stranger);
    expect(result.data.me.renderJobs.edges).toEqual([]);
  });

  it('resolves render job entities for their owner only', async () => {
    const query = `{ _entities(representations: [{ __typename: "RenderJob", id: "${jobId}" }]) { ... on RenderJob { id step } } }`;
    const own = await t.gql(parse(query) as never, {}, owner.token);
    expect(own.data).toEqual({ _entities: [{ id: jobId, step: 'Queued' }] });
    const other = await t.gql(parse(query) as never, {}, await t.token(randomUUID()));
    expect((other.errors as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
