// The SQL statements an app sends while a request runs, as its database's query hook reports
// them (Prisma's and the reads beside it): what statement-count tests compare.
import type { TestApp } from './app.ts';

export async function statementsDuring(t: TestApp, request: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const off = t.app.services.db.onQuery((sql) => statements.push(sql));
  try {
    await request();
  } finally {
    off();
  }
  return statements;
}
