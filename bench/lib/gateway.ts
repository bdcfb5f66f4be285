// The federated gateway as the frontend meets it: gateway/main.ts (Hive Gateway with the config
// docker-compose.yml ships) as a process of its own, on a supergraph composed for the subgraphs'
// local URLs. Tests and benchmarks start it the same way.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeSupergraph } from '../../scripts/compose-supergraph.ts';
import { freePort } from './service.ts';

const rootDir = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  /** Its base URL: GraphQL at /graphql, over HTTP and graphql-ws, as on the service itself. */
  url: string;
  pid: number;
  /** SIGTERM, as an orchestrator stops it; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the gateway in front of the subgraphs' GraphQL endpoints and resolves once it is ready. */
export async function startGateway(subgraphs: { render: string; identity: string }): Promise<GatewayProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gateway-'));
  const supergraph = join(dir, 'supergraph.graphql');
  writeFileSync(supergraph, composeSupergraph(subgraphs));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: rootDir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', SUPERGRAPH: supergraph },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`The gateway exited with ${child.exitCode} before it was ready`);
    if (await fetch(`${base}/readiness`).then((answer) => answer.ok, () => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The gateway was not ready within 60 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url: base,
    pid: child.pid ?? 0,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
