// Row locks held by the test's own transactions, to stop the service's changes at a chosen row and
// to see who waits for one.
import pg from 'pg';
import type { TestApp } from './app.ts';

export interface RowLocks {
  /** A transaction of the test's own that runs `sql` (taking its row locks) and keeps them until release(). */
  hold(sql: string, params: unknown[]): Promise<{ release(): Promise<void> }>;
  /** How many of the database's sessions wait for a lock. */
  waiters(): Promise<number>;
  /** Ends every holding transaction's session (what they held is released). */
  endAll(): Promise<void>;
}

export function rowLocks(t: TestApp): RowLocks {
  const held: pg.Client[] = [];
  return {
    async hold(sql, params) {
      const client = new pg.Client({ connectionString: t.databaseUrl });
      held.push(client);
      await client.connect();
      await client.query('BEGIN');
      await client.query(sql, params);
      return { release: () => client.query('COMMIT').then(() => undefined) };
    },
    async waiters() {
      const [row] = await t.app.services.db.sql.query<{ waiting: number }>(
        `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return row?.waiting ?? 0;
    },
    async endAll() {
      for (const client of held.splice(0)) await client.end().catch(() => undefined);
    },
  };
}
