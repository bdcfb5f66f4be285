// Starts the bare baseline server (baseline-server.ts) in its own process, on the same database
// and with the same pool size as the service it is compared with.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_POOL_SIZE } from '../../src/adapters/db/database.ts';
import { BENCH_SECRETS, withClient } from './service.ts';

const serverFile = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));

/** Where the baseline's frame endpoint writes, one row per frame like the service's frames. */
const FRAME_REPORTS_TABLE = `CREATE TABLE IF NOT EXISTS bench_frame_reports (
  render_job_id uuid NOT NULL,
  frame_number int NOT NULL,
  frame_job_id uuid NOT NULL,
  file_size_bytes bigint,
  completed_at timestamptz NOT NULL,
  PRIMARY KEY (render_job_id, frame_number)
)`;

export interface BaselineProcess {
  url: string;
  pid: number;
  /** Resident set size of the process, in bytes. */
  rss(): number;
  stop(): Promise<void>;
}

export async function startBaseline(options: { databaseUrl: string; poolSize?: number }): Promise<BaselineProcess> {
  await withClient(options.databaseUrl, (client) => client.query(FRAME_REPORTS_TABLE));
  const child = fork(serverFile, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: {
      ...process.env,
      BASELINE_SERVER: '1',
      DATABASE_URL: options.databaseUrl,
      POOL_SIZE: String(options.poolSize ?? DEFAULT_POOL_SIZE),
      NODE_HMAC_SECRET: BENCH_SECRETS.NODE_HMAC_SECRET,
    },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`The baseline server exited with ${code} before listening`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    rss() {
      return Number(readFileSync(`/proc/${child.pid}/statm`, 'utf8').split(' ')[1]) * 4096;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
