import { describe, expect, it } from 'vitest';
import { deriveAgentKey, signAgentRequest } from '../../src/adapters/auth/agent-signature.ts';
import { createAuthenticator } from '../../src/adapters/auth/authenticator.ts';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { loadConfig } from '../../src/config.ts';
import { createMemoryNonceStore } from '../../src/adapters/nonce/memory-nonce-store.ts';
import { UnauthenticatedError } from '../../src/domain/errors.ts';

const config = loadConfig({
  NODE_ENV: 'test',
  JWT_SECRET: 'authenticator-test-jwt-secret-0123456789',
  NODE_HMAC_SECRET: 'authenticator-test-node-secret-0123456789',
  SERVICE_TOKENS: 'gateway-token-1, billing-token-2',
});
const jwtSecret = config.jwt.secret ?? '';
const userId = '0190a6f2-3b1c-7d4e-8f00-123456789abc';
const nodeId = '0190a6f2-3b1c-7d4e-8f00-00000000000a';
const fixedNow = new Date('2030-01-01T00:00:00Z');
const clock = { now: () => fixedNow };

describe('fromAuthorization', () => {
  const auth = createAuthenticator(config, createMemoryNonceStore());

  it('treats a request without credentials as anonymous', async () => {
    await expect(auth.fromAuthorization(undefined)).resolves.toEqual({ kind: 'anonymous' });
    await expect(auth.fromAuthorization('')).resolves.toEqual({ kind: 'anonymous' });
  });

  it('recognises every configured service token', async () => {
    const service = { kind: 'service', name: 'service' };
    await expect(auth.fromAuthorization('Bearer gateway-token-1')).resolves.toEqual(service);
    await expect(auth.fromAuthorization('bearer billing-token-2')).resolves.toEqual(service);
  });

  it('verifies other bearer tokens as user JWTs', async () => {
    const user = await signDevelopmentToken(jwtSecret, { sub: userId });
    await expect(auth.fromAuthorization(`Bearer ${user}`)).resolves.toEqual({ kind: 'user', userId, isAdmin: false, plan: null, isReseller: false });
    const admin = await signDevelopmentToken(jwtSecret, { sub: userId, admin: true });
    await expect(auth.fromAuthorization(`Bearer  ${admin} `)).resolves.toEqual({ kind: 'user', userId, isAdmin: true, plan: null, isReseller: false });
  });

  it('refuses an unknown token rather than treating it as anonymous', async () => {
    await expect(auth.fromAuthorization('Bearer gateway-token-')).rejects.toThrow(UnauthenticatedError);
    await expect(auth.fromAuthorization('Bearer gateway-token-1x')).rejects.toThrow(/malformed/);
    const forged = await signDevelopmentToken('some-other-secret-some-other-secret', { sub: userId, admin: true });
    await expect(auth.fromAuthorization(`Bearer ${forged}`)).rejects.toThrow(/signature is invalid/);
  });

  it.each(['Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Token abc', 'gateway-token-1', 'Bearer a b'])(
    'refuses the malformed header %j',
    async (header) => {
      await expect(auth.fromAuthorization(header)).rejects.toThrow('Authorization header must be "Bearer <token>"');
    },
  );

  it('judges token expiry by its clock', async () => {
    const token = await signDevelopmentToken(jwtSecret, { sub: userId, ttlSeconds: 60 });
    const future = createAuthenticator(config, createMemoryNonceStore(), clock);
    await expect(future.fromAuthorization(`Bearer ${token}`)).rejects.toThrow('Token has expired');
  });
});

describe('fromAgentRequest', () => {
  const nowSeconds = Math.floor(fixedNow.getTime() / 1000);
  const path = `/v1/nodes/${nodeId}/heartbeat`;
  const body = '{"status":"idle"}';

  function request(timestamp = nowSeconds) {
    const headers = signAgentRequest({
      nodeId,
      agentKey: deriveAgentKey(config.nodeHmacSecret, nodeId),
      method: 'POST',
      path,
      body,
      timestamp,
    });
    return {
      headers: {
        nodeId: headers['X-Node-Id'],
        timestamp: headers['X-Node-Timestamp'],
        signature: headers['X-Node-Signature'],
      },
      method: 'POST',
      path,
      rawBody: Buffer.from(body),
    };
  }

  it('establishes the node from a signed request, against its clock', async () => {
    const auth = createAuthenticator(config, createMemoryNonceStore(), clock);
    await expect(auth.fromAgentRequest(request())).resolves.toEqual({ kind: 'node', nodeId });
    await expect(auth.fromAgentRequest(request(nowSeconds - 301))).rejects.toThrow(/300 seconds/);
  });

  it('refuses a replay through its nonce store', async () => {
    const auth = createAuthenticator(config, createMemoryNonceStore(), clock);
    const signed = request();
    await auth.fromAgentRequest(signed);
    await expect(auth.fromAgentRequest(signed)).rejects.toThrow(/already been used/);
  });

  it('uses the configured node secret', async () => {
    const other = loadConfig({ NODE_ENV: 'test', NODE_HMAC_SECRET: 'a-different-node-secret-0123456789abcdef' });
    const auth = createAuthenticator(other, createMemoryNonceStore(), clock);
    await expect(auth.fromAgentRequest(request())).rejects.toThrow(/does not match/);
  });
});
