import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createJwtVerifier } from '../../src/adapters/auth/jwt.ts';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const secret = 'token-script-test-secret-0123456789abcdef';
const userId = '0190a6f2-3b1c-7d4e-8f00-123456789abc';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function runToken(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await promisify(execFile)('npx', ['tsx', 'scripts/token.ts', ...args], {
      cwd: projectRoot,
      env: { ...process.env, NODE_ENV: 'test', JWT_SECRET: secret, JWT_JWKS_URL: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

// Each case starts a TypeScript process, which takes seconds on a busy machine.
describe('npm run token', { timeout: 60_000 }, () => {
  const verify = createJwtVerifier({ secret });

  it('prints only a token the verifier accepts', async () => {
    const { code, stdout } = await runToken(['--sub', userId]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    await expect(verify(stdout.trim())).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
  });

  it('makes admin tokens with the requested lifetime', async () => {
    const { code, stdout } = await runToken(['--sub', userId, '--admin', '--ttl', '120']);
    expect(code).toBe(0);
    await expect(verify(stdout.trim())).resolves.toEqual({ userId, isAdmin: true, plan: null, isReseller: false });
    const payload = JSON.parse(Buffer.from(stdout.split('.')[1] ?? '', 'base64url').toString()) as {
      iat?: number;
      exp?: number;
    };
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(120);
  });

  it.each([
    ['no --sub', []],
    ['a sub that is not a uuid', ['--sub', 'alice']],
    ['a bad ttl', ['--sub', userId, '--ttl', '1h']],
    ['an unknown option', ['--sub', userId, '--role', 'admin']],
  ])('exits 2 with usage for %s', async (_name, args) => {
    const { code, stdout, stderr } = await runToken(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('Usage: npm run token');
  });

  it('refuses when users are verified through JWKS only', async () => {
    const { code, stdout, stderr } = await runToken(['--sub', userId], {
      JWT_SECRET: '',
      JWT_JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json',
    });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('JWT_SECRET is not set');
  });
});
