import { z } from 'zod';

// Development defaults for secrets are deliberately recognisable so that a log line or a leaked
// token made with them is obviously not from production.
const DEV_JWT_SECRET = 'dev-only-jwt-secret-change-me';
const DEV_NODE_HMAC_SECRET = 'dev-only-node-hmac-secret-change-me';
const DEV_SERVICE_TOKEN = 'dev-only-service-token';

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const url = (name: string) =>
  optionalString.refine((value) => value === undefined || URL.canParse(value), `${name} must be a URL`);

const envSchema = z.object({
  NODE_ENV: z.enum(['production', 'development', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('.data'),
  DATABASE_URL: url('DATABASE_URL'),
  REDIS_URL: url('REDIS_URL'),
  REDIS_PREFIX: z
    .string()
    .trim()
    .max(100)
    .regex(/^[A-Za-z0-9:_.-]*$/, 'REDIS_PREFIX may hold letters, digits and : _ . - only')
    .default(''),
  S3_ENDPOINT: url('S3_ENDPOINT'),
  S3_BUCKET: optionalString,
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  JWT_SECRET: optionalString,
  JWT_JWKS_URL: url('JWT_JWKS_URL'),
  SERVICE_TOKENS: optionalString,
  NODE_HMAC_SECRET: optionalString,
  PUBLIC_BASE_URL: url('PUBLIC_BASE_URL'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
  HTTP_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).default(10),
  GRAPHQL_MAX_COST: z.coerce.number().int().min(1).default(20_000),
  GRAPHQL_INTROSPECTION: z.enum(['on', 'admins', 'off']).optional(),
  RATE_LIMIT_WINDOW_SEC: z.coerce.number().int().min(1).max(3600).default(10),
  RATE_LIMIT_USER_REQUESTS: z.coerce.number().int().min(0).default(1200),
  RATE_LIMIT_NODE_REQUESTS: z.coerce.number().int().min(0).default(3000),
  RATE_LIMIT_KEY_PREFIX: z.string().min(1).default('ratelimit:'),
});

export interface S3Config {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Config {
  env: 'production' | 'development' | 'test';
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Put before every Redis channel and key, so deployments (or test runs) can share one Redis. */
  redisPrefix: string;
  s3?: S3Config;
  jwt: { secret?: string; jwksUrl?: string };
  serviceTokens: string[];
  nodeHmacSecret: string;
  publicBaseUrl: string;
  logLevel: string;
  /** `pretty`: one readable line per event, for a person at a terminal; `json`: for log collectors. */
  logFormat: 'pretty' | 'json';
  limits: {
    /** JSON bodies, GraphQL requests and WebSocket messages; uploads have their own, larger limits. */
    bodyLimitBytes: number;
    graphql: { maxDepth: number; maxCost: number; introspection: 'on' | 'admins' | 'off' };
    rateLimit: { windowSec: number; userRequests: number; nodeRequests: number; keyPrefix: string };
  };
  /** Names of the secrets that fell back to development defaults; logged loudly at start. */
  developmentDefaults: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Names this deployment's Redis connections, to tell them apart in CLIENT LIST (operators, fault tests). */
export function redisClientName(config: Pick<Config, 'redisPrefix'>): string {
  return `render-orchestrator${config.redisPrefix === '' ? '' : `:${config.redisPrefix}`}`;
}

export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  { stdoutIsTTY = process.stdout.isTTY === true }: { stdoutIsTTY?: boolean } = {},
): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const production = e.NODE_ENV === 'production';
  const developmentDefaults: string[] = [];

  const secret = (name: string, value: string | undefined, fallback: string): string => {
    if (value !== undefined) return value;
    if (production) {
      problems.push(`${name} is required when NODE_ENV=production`);
      return '';
    }
    developmentDefaults.push(name);
    return fallback;
  };

  const jwtSecret = e.JWT_JWKS_URL ? e.JWT_SECRET : secret('JWT_SECRET', e.JWT_SECRET, DEV_JWT_SECRET);
  const nodeHmacSecret = secret('NODE_HMAC_SECRET', e.NODE_HMAC_SECRET, DEV_NODE_HMAC_SECRET);
  const serviceTokens = secret('SERVICE_TOKENS', e.SERVICE_TOKENS, DEV_SERVICE_TOKEN)
    .split(',')
    .map((token) => token.trim())
    .filter(Boolean);
  if (production && jwtSecret !== undefined && jwtSecret.length < 32) {
    problems.push('JWT_SECRET must be at least 32 characters when NODE_ENV=production');
  }
  if (production && nodeHmacSecret.length > 0 && nodeHmacSecret.length < 32) {
    problems.push('NODE_HMAC_SECRET must be at least 32 characters when NODE_ENV=production');
  }

  let s3: S3Config | undefined;
  if (e.S3_ENDPOINT) {
    if (!e.S3_BUCKET) problems.push('S3_BUCKET is required when S3_ENDPOINT is set');
    if (!e.S3_ACCESS_KEY_ID) problems.push('S3_ACCESS_KEY_ID is required when S3_ENDPOINT is set');
    if (!e.S3_SECRET_ACCESS_KEY) problems.push('S3_SECRET_ACCESS_KEY is required when S3_ENDPOINT is set');
    s3 = {
      endpoint: e.S3_ENDPOINT,
      bucket: e.S3_BUCKET ?? '',
      region: e.S3_REGION,
      accessKeyId: e.S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: e.S3_SECRET_ACCESS_KEY ?? '',
    };
  } else if (production) {
    problems.push('S3_ENDPOINT is required when NODE_ENV=production (the folder store is for development)');
  }
  if (production && !e.DATABASE_URL) {
    problems.push('DATABASE_URL is required when NODE_ENV=production (PGlite is for development)');
  }
  if (production && !e.PUBLIC_BASE_URL) {
    problems.push('PUBLIC_BASE_URL is required when NODE_ENV=production');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    s3,
    jwt: { secret: jwtSecret, jwksUrl: e.JWT_JWKS_URL },
    serviceTokens,
    nodeHmacSecret,
    publicBaseUrl: (e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    logLevel: e.LOG_LEVEL,
    // Someone reads a terminal; anything else (a pipe, a file, a container's log driver) is parsed.
    logFormat: e.LOG_FORMAT ?? (stdoutIsTTY && !production ? 'pretty' : 'json'),
    limits: {
      bodyLimitBytes: e.HTTP_BODY_LIMIT_BYTES,
      graphql: {
        maxDepth: e.GRAPHQL_MAX_DEPTH,
        maxCost: e.GRAPHQL_MAX_COST,
        // In production the schema is not shown to everyone; admins keep the playground.
        introspection: e.GRAPHQL_INTROSPECTION ?? (production ? 'admins' : 'on'),
      },
      rateLimit: {
        windowSec: e.RATE_LIMIT_WINDOW_SEC,
        userRequests: e.RATE_LIMIT_USER_REQUESTS,
        nodeRequests: e.RATE_LIMIT_NODE_REQUESTS,
        keyPrefix: e.RATE_LIMIT_KEY_PREFIX,
      },
    },
    developmentDefaults,
  };
}

/** Every environment variable the service reads; docker-compose.yml is checked against it. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);
