// What the limits tests share: raw GraphQL over HTTP (documents these tests build on purpose, so
// no typed documents) and a metric read from /metrics. One operation over graphql-ws is
// test/support/graphql-ws.ts's overWebSocket.
import type { TestApp } from '../support/app.ts';

export interface GraphQLAnswer {
  status: number;
  headers: Headers;
  text: string;
  body: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] };
}

export async function graphql(t: TestApp, query: string, options: { token?: string; variables?: Record<string, unknown> } = {}): Promise<GraphQLAnswer> {
  const response = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

/** The sum of a counter's series whose labels include the given ones. */
export async function metric(t: TestApp, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) total += Number(match[3]);
  }
  return total;
}
