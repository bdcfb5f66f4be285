// Prints a token for trying the API by hand: a user JWT signed with JWT_SECRET, or one of the
// SERVICE_TOKENS. Only the token goes to stdout, so that command substitution captures exactly it.
import { ConfigError, loadConfig } from '../src/config.ts';
import { signDevelopmentToken } from '../src/adapters/auth/jwt.ts';
import { numberOption, parseCommandLine, usageError } from './lib/command-line.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLE = /^[a-z][a-z0-9_-]*$/;
const USAGE = `Usage: npm run -s token -- --sub <user uuid> [options]
       npm run -s token -- --service

A user's JWT, signed with the service's JWT_SECRET (the development default when unset):
  --sub UUID        the user id (required)
  --admin           an admin (role "admin"): node administration, wallet credits, every job
  --reseller        may submit the Reseller price type (role "reseller")
  --role NAME       any other role; repeat for several
  --plan NAME       the subscription plan claim, which allows the Plan price type
  --ttl SECONDS     lifetime (default 3600)

--service prints the first of SERVICE_TOKENS instead, the bearer token of calling services.

Example:
  curl -H "Authorization: Bearer $(npm run -s token -- --sub <uuid> --admin)" localhost:4000/v1/nodes
`;

const args = parseCommandLine(USAGE, {
  sub: { type: 'string' },
  admin: { type: 'boolean', default: false },
  reseller: { type: 'boolean', default: false },
  role: { type: 'string', multiple: true, default: [] },
  plan: { type: 'string' },
  ttl: { type: 'string', default: '3600' },
  service: { type: 'boolean', default: false },
});
const userClaims = args.sub !== undefined || args.admin || args.reseller || args.role.length > 0 || args.plan !== undefined;
if (args.service && userClaims) usageError(USAGE, '--service takes no user options');
function checkedSub(sub: string | undefined): string {
  if (sub === undefined) usageError(USAGE, '--sub is required');
  if (!UUID.test(sub)) usageError(USAGE, `--sub must be a uuid, got "${sub}"`);
  return sub.toLowerCase();
}
const sub = args.service ? undefined : checkedSub(args.sub);
if (sub !== undefined) {
  const badRole = args.role.find((role) => !ROLE.test(role));
  if (badRole !== undefined) usageError(USAGE, `--role must be a lower-case name, got "${badRole}"`);
  if (args.plan !== undefined && args.plan.trim() === '') usageError(USAGE, '--plan must not be empty');
}
const ttlSeconds = numberOption(USAGE, 'ttl', args.ttl, (n) => Number.isInteger(n) && n >= 1) ?? 3600;

let config;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
}

if (sub === undefined) {
  if (config.developmentDefaults.includes('SERVICE_TOKENS')) {
    process.stderr.write('Note: the development default SERVICE_TOKENS.\n');
  }
  process.stdout.write(`${config.serviceTokens[0]}\n`);
  process.exit(0);
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
const roles = [...(args.reseller ? ['reseller'] : []), ...args.role];
process.stdout.write(
  `${await signDevelopmentToken(config.jwt.secret, {
    sub,
    admin: args.admin,
    ttlSeconds,
    ...(roles.length > 0 ? { roles } : {}),
    ...(args.plan !== undefined ? { plan: args.plan } : {}),
  })}\n`,
);
