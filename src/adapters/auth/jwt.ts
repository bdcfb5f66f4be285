// Users' JWTs: HS256 with the shared secret and/or RS256/ES256 from the identity service's JWKS.
// Each algorithm is bound to its own key source, so a token cannot pick a weaker check.
import { createSecretKey } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { setKeepingAtMost } from '../../bounded-map.ts';
import { UnauthenticatedError } from '../../domain/errors.ts';
import type { Clock } from '../../ports.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ASYMMETRIC_ALGORITHMS = ['RS256', 'ES256'];
// Tolerates small clock differences between the identity service and this one.
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
const DEFAULT_DEVELOPMENT_TTL_SECONDS = 3600;
/**
 * Tokens whose signature was checked are remembered, so a caller's next requests with the same
 * token skip the check: it was a twentieth of the CPU of a small GraphQL request. At most this
 * many are kept, the oldest forgotten first.
 */
const VERIFIED_TOKENS_KEPT = 10_000;
/** How long a signature, once checked, is trusted: a key the identity service withdraws stops being honoured within this time. */
const SIGNATURE_TRUSTED_MS = 60_000;

const EXPIRED = 'Token has expired';

class KeySetUnavailableError extends Error {}

export interface VerifiedUser {
  userId: string;
  isAdmin: boolean;
  /** The subscription plan the identity service put in the token (`plan` claim), if any. */
  plan: string | null;
  isReseller: boolean;
}

export type JwtVerifier = (token: string) => Promise<VerifiedUser>;

/** A token that passed every check, and the times (in seconds, tolerance included) it stays valid between. */
interface VerifiedToken {
  user: VerifiedUser;
  validFromSec: number;
  validUntilSec: number;
  trustedUntilMs: number;
}

export function createJwtVerifier(options: {
  secret?: string;
  jwksUrl?: string;
  clockToleranceSeconds?: number;
  clock?: Clock;
}): JwtVerifier {
  const secretKey = options.secret ? createSecretKey(Buffer.from(options.secret)) : undefined;
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  if (secretKey === undefined && jwks === undefined) {
    throw new Error('createJwtVerifier needs a secret or a JWKS URL');
  }
  const algorithms = [...(secretKey ? ['HS256'] : []), ...(jwks ? ASYMMETRIC_ALGORITHMS : [])];
  // jose rejects algorithms outside the list before asking for a key, so HS256 only ever meets
  // the secret and RS256/ES256 only ever meet the key set.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secretKey) return secretKey;
    if (!jwks) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    try {
      return await jwks(header, token);
    } catch (error) {
      // jose raises its own errors for bad tokens; anything else is the key set's endpoint failing.
      if (error instanceof errors.JOSEError) throw error;
      throw new KeySetUnavailableError('The JSON Web Key Set could not be fetched', { cause: error });
    }
  };

  const toleranceSec = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const verified = new Map<string, VerifiedToken>();

  return async (token) => {
    const now = options.clock?.now() ?? new Date();
    const nowSec = Math.floor(now.getTime() / 1000);
    const known = verified.get(token);
    if (known && now.getTime() < known.trustedUntilMs) {
      // The same claim checks jose makes, on the same clock.
      if (nowSec >= known.validUntilSec) throw new UnauthenticatedError(EXPIRED);
      if (nowSec >= known.validFromSec) return known.user;
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, { algorithms, clockTolerance: toleranceSec, currentDate: now }));
    } catch (error) {
      throw new UnauthenticatedError(describeFailure(error));
    }
    const user = userOf(payload);
    setKeepingAtMost(verified, VERIFIED_TOKENS_KEPT, token, {
      user,
      validFromSec: typeof payload.nbf === 'number' ? payload.nbf - toleranceSec : -Infinity,
      validUntilSec: typeof payload.exp === 'number' ? payload.exp + toleranceSec : Infinity,
      trustedUntilMs: now.getTime() + SIGNATURE_TRUSTED_MS,
    });
    return user;
  };
}

function userOf(payload: JWTPayload): VerifiedUser {
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw new UnauthenticatedError('Token has no subject (sub)');
  }
  if (!UUID.test(payload.sub)) {
    throw new UnauthenticatedError('Token subject (sub) is not a uuid');
  }
  // Owner ids are compared with ids read back from the database, which prints uuids in lowercase.
  return {
    userId: payload.sub.toLowerCase(),
    isAdmin: hasRole(payload, 'admin'),
    plan: typeof payload.plan === 'string' && payload.plan !== '' ? payload.plan : null,
    isReseller: hasRole(payload, 'reseller'),
  };
}

function hasRole(payload: JWTPayload, role: string): boolean {
  return payload.role === role || (Array.isArray(payload.roles) && payload.roles.includes(role));
}

// Messages name the problem for the caller; jose's own text and causes can mention key details or
// internal URLs, so they are not passed through.
function describeFailure(error: unknown): string {
  if (error instanceof KeySetUnavailableError) {
    return 'Token could not be verified: the signing keys are unavailable';
  }
  if (!(error instanceof errors.JOSEError)) {
    return 'Token could not be verified';
  }
  switch (error.code) {
    case errors.JWTExpired.code:
      return EXPIRED;
    case errors.JWSSignatureVerificationFailed.code:
      return 'Token signature is invalid';
    case errors.JOSEAlgNotAllowed.code:
      return 'Token is signed with an algorithm that is not accepted';
    case errors.JWSInvalid.code:
    case errors.JWTInvalid.code:
      return 'Token is malformed';
    case errors.JWTClaimValidationFailed.code: {
      const claim = (error as errors.JWTClaimValidationFailed).claim;
      return claim === 'nbf' ? 'Token is not valid yet' : `Token claim "${claim}" is invalid`;
    }
    case errors.JWKSNoMatchingKey.code:
      return 'Token is signed by an unknown key';
    case errors.JWKSTimeout.code:
    case errors.JWKSInvalid.code:
    case errors.JOSEError.code:
      return 'Token could not be verified: the signing keys are unavailable';
    default:
      return 'Token could not be verified';
  }
}

export async function signDevelopmentToken(
  secret: string,
  claims: { sub: string; admin?: boolean; roles?: string[]; plan?: string; ttlSeconds?: number },
): Promise<string> {
  const roles = [...(claims.admin ? ['admin'] : []), ...(claims.roles ?? [])];
  return new SignJWT({
    ...(claims.admin ? { role: 'admin' } : {}),
    ...(roles.length > 0 ? { roles } : {}),
    ...(claims.plan ? { plan: claims.plan } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.ttlSeconds ?? DEFAULT_DEVELOPMENT_TTL_SECONDS))
    .sign(new TextEncoder().encode(secret));
}
