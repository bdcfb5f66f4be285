import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('runs on embedded defaults with loud development secrets', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ env: 'development', port: 4000, dataDir: '.data', databaseUrl: undefined, redisUrl: undefined, s3: undefined });
    expect(config.developmentDefaults.sort()).toEqual(['JWT_SECRET', 'NODE_HMAC_SECRET', 'SERVICE_TOKENS']);
    expect(config.publicBaseUrl).toBe('http://localhost:4000');
  });

  it('reads every variable', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      PORT: '8080',
      DATA_DIR: '/srv/data',
      DATABASE_URL: 'postgresql://u:p@db:5432/orchestrator',
      REDIS_URL: 'redis://cache:6379',
      S3_ENDPOINT: 'http://minio:9000',
      S3_BUCKET: 'renders',
      S3_REGION: 'eu-central-1',
      S3_ACCESS_KEY_ID: 'key',
      S3_SECRET_ACCESS_KEY: 'secret',
      JWT_SECRET: 'x'.repeat(32),
      SERVICE_TOKENS: 'one, two',
      NODE_HMAC_SECRET: 'y'.repeat(32),
      PUBLIC_BASE_URL: 'https://render.example.com/',
      LOG_LEVEL: 'warn',
    });
    expect(config).toMatchObject({
      env: 'production',
      port: 8080,
      serviceTokens: ['one', 'two'],
      publicBaseUrl: 'https://render.example.com',
      s3: { endpoint: 'http://minio:9000', bucket: 'renders', region: 'eu-central-1' },
      developmentDefaults: [],
    });
  });

  it('refuses production without its secrets and backends, naming each one', () => {
    let error: unknown;
    try {
      loadConfig({ NODE_ENV: 'production' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['JWT_SECRET', 'NODE_HMAC_SECRET', 'SERVICE_TOKENS', 'S3_ENDPOINT', 'DATABASE_URL', 'PUBLIC_BASE_URL']) {
      expect(problems).toContain(name);
    }
  });

  it('logs one readable line per event at a terminal in development, JSON elsewhere, as LOG_FORMAT overrides', () => {
    const format = (env: Record<string, string>, stdoutIsTTY: boolean) => loadConfig(env, { stdoutIsTTY }).logFormat;
    expect(format({}, true)).toBe('pretty');
    expect(format({ NODE_ENV: 'test' }, true)).toBe('pretty');
    expect(format({}, false)).toBe('json');
    expect(format({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(format({ LOG_FORMAT: 'pretty' }, false)).toBe('pretty');

    const production = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://db/orchestrator',
      S3_ENDPOINT: 'http://minio:9000',
      S3_BUCKET: 'renders',
      S3_ACCESS_KEY_ID: 'key',
      S3_SECRET_ACCESS_KEY: 'secret',
      JWT_SECRET: 'x'.repeat(32),
      NODE_HMAC_SECRET: 'y'.repeat(32),
      SERVICE_TOKENS: 'one',
      PUBLIC_BASE_URL: 'https://render.example.com',
    };
    expect(format(production, true)).toBe('json');
    expect(format({ ...production, LOG_FORMAT: 'pretty' }, true)).toBe('pretty');
    expect(() => loadConfig({ LOG_FORMAT: 'text' })).toThrow(/LOG_FORMAT/);
  });

  it('refuses malformed values with a clear message', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL must be a URL/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    expect(() => loadConfig({ S3_ENDPOINT: 'http://minio:9000' })).toThrow(/S3_BUCKET is required/);
  });

  it('stops the service at start with exit code 2 and the problems on stderr', async () => {
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: '', JWT_SECRET: '' },
    });
    const failure = await run.then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain('Invalid configuration');
    expect(failure?.stderr).toContain('JWT_SECRET is required when NODE_ENV=production');
  }, 60_000);
});
