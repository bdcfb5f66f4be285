// Runs one of the project's TypeScript commands as a user would, as its own process, and keeps
// what it printed and its exit code whatever they are: the tests are about exactly those.
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface CommandOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runScript(
  script: string,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CommandOutcome> {
  try {
    // node with tsx's loader, as the package scripts run them, without npx's own start-up.
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: projectRoot,
      env: { ...process.env, ...options.env },
      ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
