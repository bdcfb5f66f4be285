// What the setup's tests ask of a server: a real query, a real PING, and whether anything still
// listens at its URL.
import pg from 'pg';
import { createClient } from 'redis';
import { listens } from '../support/private-servers.ts';

export async function selectOne(url: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    return rows[0]?.one;
  } finally {
    await client.end();
  }
}

export async function ping(url: string): Promise<string> {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  await client.connect();
  try {
    return await client.ping();
  } finally {
    client.destroy();
  }
}

export function listensAt(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return listens(Number(port), hostname);
}
