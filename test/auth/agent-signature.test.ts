import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveAgentKey, signAgentRequest, verifyAgentRequest } from '../../src/adapters/auth/agent-signature.ts';
import { createMemoryNonceStore } from '../../src/adapters/nonce/memory-nonce-store.ts';
import { UnauthenticatedError } from '../../src/domain/errors.ts';
import { HTTP_STATUS } from '../../src/transport/errors.ts';

const secret = 'test-node-hmac-secret-of-enough-length';
const nodeId = '0190a6f2-3b1c-7d4e-8f00-123456789abc';
const now = 1_760_000_000;
const path = '/v1/nodes/0190a6f2-3b1c-7d4e-8f00-123456789abc/heartbeat?verbose=1';
const body = JSON.stringify({ status: 'idle', cpu_percent: 12.5 });

function signed(overrides: { agentKey?: string; timestamp?: number; nodeId?: string } = {}) {
  return signAgentRequest({
    nodeId: overrides.nodeId ?? nodeId,
    agentKey: overrides.agentKey ?? deriveAgentKey(secret, overrides.nodeId ?? nodeId),
    method: 'post',
    path,
    body,
    timestamp: overrides.timestamp ?? now,
  });
}

function verify(
  headers: Record<string, string>,
  request: { method?: string; path?: string; rawBody?: Buffer | string | undefined } = {},
  nonceStore = createMemoryNonceStore(),
) {
  return verifyAgentRequest({
    headers: {
      nodeId: headers['X-Node-Id'],
      timestamp: headers['X-Node-Timestamp'],
      signature: headers['X-Node-Signature'],
    },
    method: request.method ?? 'POST',
    path: request.path ?? path,
    rawBody: 'rawBody' in request ? request.rawBody : Buffer.from(body),
    nodeHmacSecret: secret,
    nonceStore,
    nowSeconds: now,
  });
}

describe('deriveAgentKey', () => {
  it('is the lowercase hex HMAC-SHA256 of the node id under the secret', () => {
    const key = deriveAgentKey(secret, nodeId);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).toBe(createHmac('sha256', secret).update(nodeId).digest('hex'));
    expect(deriveAgentKey(secret, '0190a6f2-3b1c-7d4e-8f00-123456789abd')).not.toBe(key);
  });
});

describe('signAgentRequest', () => {
  it('signs the canonical string with the agent key as written', () => {
    const agentKey = deriveAgentKey(secret, nodeId);
    const headers = signed();
    const bodyHash = createHash('sha256').update(body).digest('hex');
    const expected = createHmac('sha256', Buffer.from(agentKey, 'utf8'))
      .update(`${now}\nPOST\n${path}\n${bodyHash}`)
      .digest('hex');
    expect(headers).toEqual({
      'X-Node-Id': nodeId,
      'X-Node-Timestamp': String(now),
      'X-Node-Signature': `v1=${expected}`,
    });
  });

  it('hashes a missing body as the empty string', () => {
    const agentKey = deriveAgentKey(secret, nodeId);
    const request = { nodeId, agentKey, method: 'GET', path: '/v1/nodes', timestamp: now };
    expect(signAgentRequest({ ...request, body: undefined })).toEqual(signAgentRequest({ ...request, body: '' }));
  });

  it('defaults the timestamp to the current unix second', () => {
    const before = Math.floor(Date.now() / 1000);
    const headers = signAgentRequest({ nodeId, agentKey: 'k', method: 'GET', path: '/v1/nodes', body: undefined });
    expect(Number(headers['X-Node-Timestamp'])).toBeGreaterThanOrEqual(before);
    expect(Number(headers['X-Node-Timestamp'])).toBeLessThanOrEqual(before + 1);
  });
});

describe('verifyAgentRequest', () => {
  it('accepts a correctly signed request and returns the node id', async () => {
    await expect(verify(signed())).resolves.toBe(nodeId);
  });

  it('accepts the body as a string as well as a Buffer, and an empty body', async () => {
    await expect(verify(signed(), { rawBody: body })).resolves.toBe(nodeId);
    const headers = signAgentRequest({
      nodeId,
      agentKey: deriveAgentKey(secret, nodeId),
      method: 'GET',
      path: '/v1/nodes/x/commands',
      body: undefined,
      timestamp: now,
    });
    await expect(verify(headers, { method: 'GET', path: '/v1/nodes/x/commands', rawBody: undefined })).resolves.toBe(
      nodeId,
    );
    await expect(
      verify(headers, { method: 'GET', path: '/v1/nodes/x/commands', rawBody: Buffer.alloc(0) }),
    ).resolves.toBe(nodeId);
  });

  it('refuses a request signed with another key', async () => {
    const wrongKey = deriveAgentKey('another-secret', nodeId);
    await expect(verify(signed({ agentKey: wrongKey }))).rejects.toThrow(/does not match/);
  });

  it("refuses another node's key used under this node's id", async () => {
    const otherKey = deriveAgentKey(secret, '0190a6f2-3b1c-7d4e-8f00-123456789abd');
    await expect(verify(signed({ agentKey: otherKey }))).rejects.toThrow(UnauthenticatedError);
  });

  it.each([
    ['method', { method: 'PUT' }],
    ['path', { path: '/v1/nodes/0190a6f2-3b1c-7d4e-8f00-123456789abc/crash?verbose=1' }],
    ['query', { path: '/v1/nodes/0190a6f2-3b1c-7d4e-8f00-123456789abc/heartbeat?verbose=2' }],
    ['missing query', { path: '/v1/nodes/0190a6f2-3b1c-7d4e-8f00-123456789abc/heartbeat' }],
    ['path without /v1', { path: '/nodes/0190a6f2-3b1c-7d4e-8f00-123456789abc/heartbeat?verbose=1' }],
    ['body', { rawBody: Buffer.from(body.replace('idle', 'busy')) }],
    ['missing body', { rawBody: undefined }],
  ])('refuses a tampered %s', async (_name, tampered) => {
    await expect(verify(signed(), tampered)).rejects.toThrow(/does not match/);
  });

  it.each([299, -299, 300, -300])('accepts a timestamp %i s away', async (offset) => {
    await expect(verify(signed({ timestamp: now + offset }))).resolves.toBe(nodeId);
  });

  it.each([301, -301, 100_000])('refuses a timestamp %i s away', async (offset) => {
    await expect(verify(signed({ timestamp: now + offset }))).rejects.toThrow(/300 seconds/);
  });

  it('refuses a replayed signature, and one re-cased to look new', async () => {
    const store = createMemoryNonceStore();
    const headers = signed();
    await expect(verify(headers, {}, store)).resolves.toBe(nodeId);
    await expect(verify(headers, {}, store)).rejects.toThrow(/already been used/);
    const recased = { ...headers, 'X-Node-Signature': `v1=${headers['X-Node-Signature'].slice(3).toUpperCase()}` };
    await expect(verify(recased, {}, store)).rejects.toThrow(/already been used/);
  });

  it('claims the nonce only after the signature is verified, so forgeries cannot burn it', async () => {
    const store = createMemoryNonceStore();
    const headers = signed();
    await expect(verify(headers, { method: 'PUT' }, store)).rejects.toThrow(/does not match/);
    const shifted = { ...headers, 'X-Node-Timestamp': String(now + 1) };
    await expect(verify(shifted, {}, store)).rejects.toThrow(/does not match/);
    await expect(verify(headers, {}, store)).resolves.toBe(nodeId);
  });

  it('claims the signature under the agent-sig prefix for the whole acceptance window', async () => {
    const claims: Array<[string, number]> = [];
    const store = {
      async claim(value: string, ttlSeconds: number) {
        claims.push([value, ttlSeconds]);
        return true;
      },
      async close() {},
    };
    const headers = signed();
    await verify(headers, {}, store);
    expect(claims).toEqual([[`agent-sig:${headers['X-Node-Signature'].slice(3)}`, 600]]);
  });

  it('names every missing header', async () => {
    await expect(verify({})).rejects.toThrow('X-Node-Id, X-Node-Timestamp, X-Node-Signature');
    const { 'X-Node-Signature': _dropped, ...withoutSignature } = signed();
    await expect(verify(withoutSignature)).rejects.toThrow(/header\(s\): X-Node-Signature$/);
  });

  it('refuses a node id that is not a uuid, even when signed with its derived key', async () => {
    await expect(verify(signed({ nodeId: 'node-1' }))).rejects.toThrow(/UUID/);
  });

  it('returns a node id in lowercase', async () => {
    const upper = nodeId.toUpperCase();
    await expect(verify(signed({ nodeId: upper }))).resolves.toBe(nodeId);
  });

  it.each(['1760000000.5', '1e9', 'soon', '-1760000000', ' 1760000000'])(
    'refuses the non-integer timestamp %j',
    async (timestamp) => {
      await expect(verify({ ...signed(), 'X-Node-Timestamp': timestamp })).rejects.toThrow(/integer/);
    },
  );

  it.each(['abc', 'v2=' + 'a'.repeat(64), 'v1=' + 'a'.repeat(63), 'v1=' + 'g'.repeat(64), 'a'.repeat(64)])(
    'refuses the malformed signature %j',
    async (signature) => {
      await expect(verify({ ...signed(), 'X-Node-Signature': signature })).rejects.toThrow(/v1=/);
    },
  );

  it('fails with UnauthenticatedError (401)', async () => {
    const error = await verify({}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(HTTP_STATUS[(error as UnauthenticatedError).code]).toBe(401);
  });
});
