// A user reading their jobs over REST and GraphQL as fast as answers come, during a fault test.
// Each answer is a success, a clean "the database is away" (REST 503 SERVICE_UNAVAILABLE with
// Retry-After and the error body; GraphQL errors with that code), or unclean: anything else,
// a 500 or a dropped connection included.
import { setTimeout as sleep } from 'node:timers/promises';
import { RenderJobsDocument } from '../generated/graphql.ts';
import type { TestApp, TestUser } from '../support/app.ts';

export interface ReaderTally {
  requests: number;
  succeeded: number;
  unavailable: number;
  unclean: unknown[];
}

export function startUserReader(t: TestApp, user: TestUser, jobIds: readonly string[]) {
  const tally: ReaderTally = { requests: 0, succeeded: 0, unavailable: 0, unclean: [] };
  let running = true;

  const readRest = async (id: string) => {
    const rest = await t.rest('GET', `/v1/renders/${id}`, { token: user.token });
    if (rest.status === 200) return tally.succeeded++;
    if (rest.status === 503 && rest.body?.error?.code === 'SERVICE_UNAVAILABLE' && rest.headers.get('retry-after') !== null) {
      return tally.unavailable++;
    }
    tally.unclean.push({ rest: rest.status, body: rest.body });
  };
  const readGraphQL = async () => {
    const graphql = await t.gql(RenderJobsDocument, { first: 10 }, user.token);
    const codes = (graphql.errors ?? []).map((error) => error.extensions?.code);
    if (codes.length === 0) return tally.succeeded++;
    if (codes.every((code) => code === 'SERVICE_UNAVAILABLE')) return tally.unavailable++;
    tally.unclean.push({ graphql: graphql.errors });
  };
  const read = async (request: () => Promise<unknown>) => {
    tally.requests++;
    await request().catch((error: unknown) => tally.unclean.push({ network: String(error) }));
  };

  const loop = (async () => {
    while (running) {
      for (const id of [...jobIds]) await read(() => readRest(id));
      await read(readGraphQL);
      await sleep(50);
    }
  })();
  return {
    tally,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** The status of /readyz: 503 while a backend the replica needs does not answer. */
export async function readiness(t: TestApp): Promise<number> {
  return (await t.rest('GET', '/readyz')).status;
}
