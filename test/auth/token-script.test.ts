import { describe, expect, it } from 'vitest';
import { createJwtVerifier } from '../../src/adapters/auth/jwt.ts';
import { runScript } from '../support/command.ts';

const secret = 'token-script-test-secret-0123456789abcdef';
const userId = '0190a6f2-3b1c-7d4e-8f00-123456789abc';

const runToken = (args: string[], env: Record<string, string> = {}) =>
  runScript('scripts/token.ts', args, { env: { NODE_ENV: 'test', JWT_SECRET: secret, JWT_JWKS_URL: '', ...env } });

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

  it('makes plan, reseller and other role tokens', async () => {
    const { code, stdout } = await runToken(['--sub', userId, '--plan', 'studio', '--reseller', '--role', 'admin']);
    expect(code).toBe(0);
    await expect(verify(stdout.trim())).resolves.toEqual({ userId, isAdmin: true, plan: 'studio', isReseller: true });
  });

  it('prints a service token', async () => {
    const { code, stdout } = await runToken(['--service'], { SERVICE_TOKENS: 'first-service-token,second' });
    expect(code).toBe(0);
    expect(stdout).toBe('first-service-token\n');
  });

  it('prints its usage on --help', async () => {
    const { code, stdout, stderr } = await runToken(['--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    for (const option of ['--sub', '--admin', '--reseller', '--role', '--plan', '--ttl', '--service']) {
      expect(stdout).toContain(option);
    }
  });

  it.each([
    ['no --sub', []],
    ['a sub that is not a uuid', ['--sub', 'alice']],
    ['a bad ttl', ['--sub', userId, '--ttl', '1h']],
    ['an unknown option', ['--sub', userId, '--superuser']],
    ['a positional argument', ['--sub', userId, 'admin']],
    ['a role that is not a name', ['--sub', userId, '--role', 'Admin Root']],
    ['an empty plan', ['--sub', userId, '--plan', ' ']],
    ['--service with user claims', ['--service', '--sub', userId]],
  ])('exits 2 with usage for %s', async (_name, args) => {
    const { code, stdout, stderr } = await runToken(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('Usage: npm run -s token');
    expect(stderr).not.toMatch(/^\s+at /m);
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
