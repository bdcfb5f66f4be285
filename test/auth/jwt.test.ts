import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createJwtVerifier, signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { UnauthenticatedError } from '../../src/domain/errors.ts';

const secret = 'test-jwt-secret-that-is-long-enough-1234';
const userId = '0190a6f2-3b1c-7d4e-8f00-123456789abc';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

function hs256(payload: JWTPayload, key = secret, expiresIn: string | number = '1h') {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(key));
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function failure(promise: Promise<unknown>): Promise<UnauthenticatedError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UnauthenticatedError);
  return error as UnauthenticatedError;
}

describe('HS256 verifier', () => {
  const verify = createJwtVerifier({ secret });

  it('accepts a valid user token', async () => {
    await expect(verify(await hs256({ sub: userId }))).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
  });

  it('reads the plan claim and the reseller role for pricing', async () => {
    await expect(verify(await hs256({ sub: userId, plan: 'pro', roles: ['reseller'] }))).resolves.toEqual({
      userId,
      isAdmin: false,
      plan: 'pro',
      isReseller: true,
    });
    await expect(verify(await hs256({ sub: userId, plan: '', role: 'reseller' }))).resolves.toEqual({
      userId,
      isAdmin: false,
      plan: null,
      isReseller: true,
    });
  });

  it('reads admin from role and from roles', async () => {
    await expect(verify(await hs256({ sub: userId, role: 'admin' }))).resolves.toEqual({ userId, isAdmin: true, plan: null, isReseller: false });
    await expect(verify(await hs256({ sub: userId, roles: ['viewer', 'admin'] }))).resolves.toEqual({
      userId,
      isAdmin: true,
      plan: null,
      isReseller: false,
    });
    await expect(verify(await hs256({ sub: userId, role: 'viewer', roles: ['viewer'] }))).resolves.toEqual({
      userId,
      isAdmin: false,
      plan: null,
      isReseller: false,
    });
    await expect(verify(await hs256({ sub: userId, roles: 'admin' }))).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
  });

  it('lowercases the user id', async () => {
    await expect(verify(await hs256({ sub: userId.toUpperCase() }))).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
  });

  it('refuses an expired token', async () => {
    const token = await hs256({ sub: userId }, secret, Math.floor(Date.now() / 1000) - 60);
    expect((await failure(verify(token))).message).toBe('Token has expired');
  });

  it('tolerates a few seconds of clock difference, configurably', async () => {
    const justExpired = await hs256({ sub: userId }, secret, Math.floor(Date.now() / 1000) - 2);
    await expect(verify(justExpired)).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
    await failure(createJwtVerifier({ secret, clockToleranceSeconds: 0 })(justExpired));
  });

  it('judges expiry by the given clock', async () => {
    const token = await hs256({ sub: userId });
    const later = createJwtVerifier({ secret, clock: { now: () => new Date(Date.now() + 2 * 3600_000) } });
    expect((await failure(later(token))).message).toBe('Token has expired');
  });

  it('refuses a token that is not valid yet', async () => {
    const token = await new SignJWT({ sub: userId })
      .setProtectedHeader({ alg: 'HS256' })
      .setNotBefore(Math.floor(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(secret));
    expect((await failure(verify(token))).message).toBe('Token is not valid yet');
  });

  it('refuses a token signed with another secret without revealing the secret', async () => {
    const error = await failure(verify(await hs256({ sub: userId }, 'another-secret-another-secret-123')));
    expect(error.message).toBe('Token signature is invalid');
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(secret);
  });

  it('refuses an unsigned (alg none) token', async () => {
    const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: userId, role: 'admin' })}.`;
    expect((await failure(verify(token))).message).toBe('Token is signed with an algorithm that is not accepted');
  });

  it('refuses HS256 signatures under another algorithm name', async () => {
    const valid = await hs256({ sub: userId });
    const [, payload, signature] = valid.split('.');
    const relabelled = `${base64url({ alg: 'HS512' })}.${payload}.${signature}`;
    expect((await failure(verify(relabelled))).message).toMatch(/algorithm/);
  });

  it.each([
    ['garbage', 'not-a-jwt'],
    ['two parts', 'abc.def'],
    ['bad base64 header', '!!!.e30.sig'],
    ['header without alg', `${base64url({ typ: 'JWT' })}.${base64url({ sub: userId })}.sig`],
  ])('refuses a malformed token (%s)', async (_name, token) => {
    expect((await failure(verify(token))).message).toBe('Token is malformed');
  });

  it('refuses a correctly signed token whose payload is not a JSON claims set', async () => {
    const token = await new CompactSign(new TextEncoder().encode('not json'))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    expect((await failure(verify(token))).message).toBe('Token is malformed');
  });

  it('refuses a sub that is not a uuid, and a missing sub', async () => {
    expect((await failure(verify(await hs256({ sub: 'user-42' })))).message).toBe('Token subject (sub) is not a uuid');
    expect((await failure(verify(await hs256({})))).message).toBe('Token has no subject (sub)');
    expect((await failure(verify(await hs256({ sub: 42 } as unknown as JWTPayload)))).message).toMatch(/sub/);
  });

  it('needs a secret or a JWKS URL', () => {
    expect(() => createJwtVerifier({})).toThrow(/secret or a JWKS URL/);
  });
});

describe('a verified token remembered', () => {
  // The signature check is webcrypto's HMAC verify; counting its calls tells a remembered token from a checked one.
  const signatureChecks = () => {
    const spy = vi.spyOn(globalThis.crypto.subtle, 'verify');
    onTestFinished(() => spy.mockRestore());
    return spy;
  };
  const clockAt = (start: number) => {
    let now = start;
    return { clock: { now: () => new Date(now) }, advance: (ms: number) => void (now += ms) };
  };

  it('skips the signature check on the same token for a minute, then checks it again', async () => {
    const { clock, advance } = clockAt(Date.now());
    const verify = createJwtVerifier({ secret, clock });
    const token = await hs256({ sub: userId, role: 'admin' });
    const checks = signatureChecks();
    const user = { userId, isAdmin: true, plan: null, isReseller: false };
    await expect(verify(token)).resolves.toEqual(user);
    await expect(verify(token)).resolves.toEqual(user);
    expect(checks).toHaveBeenCalledTimes(1);
    advance(61_000);
    await expect(verify(token)).resolves.toEqual(user);
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it('refuses it once it expires, with the clock tolerance jose gives', async () => {
    const { clock, advance } = clockAt(Date.now());
    const verify = createJwtVerifier({ secret, clock });
    const token = await hs256({ sub: userId }, secret, Math.floor(Date.now() / 1000) + 20);
    await verify(token);
    advance(23_000);
    await expect(verify(token)).resolves.toMatchObject({ userId });
    advance(5_000);
    expect((await failure(verify(token))).message).toBe('Token has expired');
  });

  it('remembers no token that failed', async () => {
    const verify = createJwtVerifier({ secret });
    const forged = await hs256({ sub: userId }, 'another-secret-that-is-long-enough-5678');
    const checks = signatureChecks();
    expect((await failure(verify(forged))).message).toBe('Token signature is invalid');
    expect((await failure(verify(forged))).message).toBe('Token signature is invalid');
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it('does not accept a tampered copy of a remembered token', async () => {
    const verify = createJwtVerifier({ secret });
    const token = await hs256({ sub: userId });
    await verify(token);
    const [header, , signature] = token.split('.');
    const tampered = `${header}.${base64url({ sub: userId, role: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 })}.${signature}`;
    expect((await failure(verify(tampered))).message).toBe('Token signature is invalid');
  });
});

describe('signDevelopmentToken', () => {
  const verify = createJwtVerifier({ secret });

  it('makes tokens the verifier accepts, with admin as role', async () => {
    await expect(verify(await signDevelopmentToken(secret, { sub: userId }))).resolves.toEqual({
      userId,
      isAdmin: false,
      plan: null,
      isReseller: false,
    });
    const admin = await signDevelopmentToken(secret, { sub: userId, admin: true, ttlSeconds: 60 });
    await expect(verify(admin)).resolves.toEqual({ userId, isAdmin: true, plan: null, isReseller: false });
    const payload = JSON.parse(Buffer.from(admin.split('.')[1] ?? '', 'base64url').toString()) as JWTPayload;
    expect(payload).toMatchObject({ sub: userId, role: 'admin' });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(60);
  });
});

describe('JWKS verifier', () => {
  let server: Server;
  let jwksUrl: string;
  let jwksRequests = 0;
  const kid = 'identity-2025';
  let rsaPrivate: PrivateKey;
  let ecPrivate: PrivateKey;
  let strangerPrivate: PrivateKey;

  beforeAll(async () => {
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    strangerPrivate = (await generateKeyPair('RS256')).privateKey;
    rsaPrivate = rsa.privateKey;
    ecPrivate = ec.privateKey;
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid, alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'identity-ec', alg: 'ES256', use: 'sig' },
    ];
    server = createServer((request, response) => {
      jwksRequests += 1;
      if (request.url !== '/.well-known/jwks.json') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function sign(payload: JWTPayload, key: PrivateKey, header: { alg: string; kid?: string }) {
    return new SignJWT(payload).setProtectedHeader(header).setIssuedAt().setExpirationTime('1h').sign(key);
  }

  it('accepts RS256 and ES256 tokens signed by the key set', async () => {
    const verify = createJwtVerifier({ jwksUrl });
    const rsaToken = await sign({ sub: userId, roles: ['admin'] }, rsaPrivate, { alg: 'RS256', kid });
    await expect(verify(rsaToken)).resolves.toEqual({ userId, isAdmin: true, plan: null, isReseller: false });
    const ecToken = await sign({ sub: userId }, ecPrivate, { alg: 'ES256', kid: 'identity-ec' });
    await expect(verify(ecToken)).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
    expect(jwksRequests).toBeGreaterThan(0);
  });

  it('refuses a token signed by a key outside the set', async () => {
    const verify = createJwtVerifier({ jwksUrl });
    const forged = await sign({ sub: userId }, strangerPrivate, { alg: 'RS256', kid });
    expect((await failure(verify(forged))).message).toBe('Token signature is invalid');
    const unknownKid = await sign({ sub: userId }, strangerPrivate, { alg: 'RS256', kid: 'someone-else' });
    expect((await failure(verify(unknownKid))).message).toBe('Token is signed by an unknown key');
  });

  it('refuses expired tokens and non-uuid subjects from the key set', async () => {
    const verify = createJwtVerifier({ jwksUrl });
    const expired = await new SignJWT({ sub: userId })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(rsaPrivate);
    expect((await failure(verify(expired))).message).toBe('Token has expired');
    const notUuid = await sign({ sub: 'alice' }, rsaPrivate, { alg: 'RS256', kid });
    expect((await failure(verify(notUuid))).message).toBe('Token subject (sub) is not a uuid');
  });

  it('refuses HS256 tokens when only the key set is configured', async () => {
    const verify = createJwtVerifier({ jwksUrl });
    expect((await failure(verify(await hs256({ sub: userId })))).message).toBe(
      'Token is signed with an algorithm that is not accepted',
    );
  });

  it('accepts both kinds when both are configured, each only with its own key', async () => {
    const verify = createJwtVerifier({ secret, jwksUrl });
    await expect(verify(await hs256({ sub: userId }))).resolves.toEqual({ userId, isAdmin: false, plan: null, isReseller: false });
    await expect(verify(await sign({ sub: userId }, rsaPrivate, { alg: 'RS256', kid }))).resolves.toEqual({
      userId,
      isAdmin: false,
      plan: null,
      isReseller: false,
    });
    const forged = await sign({ sub: userId }, strangerPrivate, { alg: 'RS256', kid });
    await failure(verify(forged));
  });

  it('answers 401 with a clear message when the key set cannot be fetched', async () => {
    const token = await sign({ sub: userId }, rsaPrivate, { alg: 'RS256', kid });
    const notFound = createJwtVerifier({ jwksUrl: jwksUrl.replace('jwks.json', 'missing.json') });
    const unavailable = 'Token could not be verified: the signing keys are unavailable';
    expect((await failure(notFound(token))).message).toBe(unavailable);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = createJwtVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    expect((await failure(unreachable(token))).message).toBe(unavailable);
  });
});
