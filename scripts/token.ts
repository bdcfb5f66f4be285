// Prints a user JWT signed with JWT_SECRET, for trying the API by hand:
//
//   npm run token -- --sub <uuid> [--admin] [--ttl <seconds>]
//   curl -H "Authorization: Bearer $(npm run -s token -- --sub <uuid>)" ...
//
// Only the token goes to stdout so that command substitution captures exactly it.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../src/config.ts';
import { signDevelopmentToken } from '../src/adapters/auth/jwt.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const USAGE = 'Usage: npm run token -- --sub <user uuid> [--admin] [--ttl <seconds, default 3600>]';

function usage(problem: string): never {
  process.stderr.write(`${problem}\n${USAGE}\n`);
  process.exit(2);
}

function parse(): { sub: string; admin: boolean; ttlSeconds: number } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        sub: { type: 'string' },
        admin: { type: 'boolean', default: false },
        ttl: { type: 'string', default: '3600' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.sub === undefined) usage('--sub is required');
  if (!UUID.test(values.sub)) usage(`--sub must be a uuid, got "${values.sub}"`);
  if (!/^\d+$/.test(values.ttl) || Number(values.ttl) < 1) {
    usage(`--ttl must be a positive integer, got "${values.ttl}"`);
  }
  return { sub: values.sub.toLowerCase(), admin: values.admin, ttlSeconds: Number(values.ttl) };
}

const args = parse();
let config;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
}
if (config.jwt.secret === undefined) {
  process.stderr.write(
    'JWT_SECRET is not set: the service verifies users with JWT_JWKS_URL, ' +
      'so tokens must come from the identity service.\n',
  );
  process.exit(1);
}
if (config.developmentDefaults.includes('JWT_SECRET')) {
  process.stderr.write('Note: signed with the development default JWT_SECRET.\n');
}
process.stdout.write(`${await signDevelopmentToken(config.jwt.secret, args)}\n`);
