// Signed agent requests (see the design's conventions). The service, the simulated agent fleet
// and the tests all import this module, so it must stay free of server dependencies.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '../../domain/errors.ts';
import type { NonceStore } from '../../ports.ts';

export const MAX_CLOCK_SKEW_SECONDS = 300;
// Covers the whole acceptance window (now ± skew), so a signature cannot outlive its nonce.
const REPLAY_WINDOW_SECONDS = 2 * MAX_CLOCK_SKEW_SECONDS;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP = /^\d{1,12}$/;
const SIGNATURE = /^v1=([0-9a-f]{64})$/i;

export type AgentSignatureHeaders = Record<'X-Node-Id' | 'X-Node-Timestamp' | 'X-Node-Signature', string>;

export interface AgentRequestHeaders {
  nodeId?: string;
  timestamp?: string;
  signature?: string;
}

export function deriveAgentKey(nodeHmacSecret: string, nodeId: string): string {
  return createHmac('sha256', nodeHmacSecret).update(nodeId, 'utf8').digest('hex');
}

function canonicalString(timestamp: string, method: string, path: string, body: string | Buffer | undefined): string {
  const bodyHash = createHash('sha256')
    .update(body ?? '')
    .digest('hex');
  return `${timestamp}\n${method.toUpperCase()}\n${path}\n${bodyHash}`;
}

function signatureHex(agentKey: string, canonical: string): string {
  return createHmac('sha256', Buffer.from(agentKey, 'utf8')).update(canonical, 'utf8').digest('hex');
}

export function signAgentRequest(input: {
  nodeId: string;
  agentKey: string;
  method: string;
  path: string;
  body: string | Buffer | undefined;
  timestamp?: number;
}): AgentSignatureHeaders {
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000));
  const canonical = canonicalString(timestamp, input.method, input.path, input.body);
  return {
    'X-Node-Id': input.nodeId,
    'X-Node-Timestamp': timestamp,
    'X-Node-Signature': `v1=${signatureHex(input.agentKey, canonical)}`,
  };
}

/** Resolves to the node id the request is signed for; throws UnauthenticatedError otherwise. */
export async function verifyAgentRequest(input: {
  headers: AgentRequestHeaders;
  method: string;
  path: string;
  rawBody: Buffer | string | undefined;
  nodeHmacSecret: string;
  nonceStore: NonceStore;
  nowSeconds: number;
}): Promise<string> {
  const { nodeId, timestamp, signature } = input.headers;
  if (!nodeId || !timestamp || !signature) {
    const presented = { 'X-Node-Id': nodeId, 'X-Node-Timestamp': timestamp, 'X-Node-Signature': signature };
    const missing = Object.entries(presented)
      .filter(([, value]) => !value)
      .map(([name]) => name);
    throw new UnauthenticatedError(`Missing agent authentication header(s): ${missing.join(', ')}`);
  }
  if (!UUID.test(nodeId)) {
    throw new UnauthenticatedError('X-Node-Id must be a UUID');
  }
  if (!TIMESTAMP.test(timestamp)) {
    throw new UnauthenticatedError('X-Node-Timestamp must be an integer number of unix seconds');
  }
  if (Math.abs(Number(timestamp) - input.nowSeconds) > MAX_CLOCK_SKEW_SECONDS) {
    throw new UnauthenticatedError(
      `X-Node-Timestamp is more than ${MAX_CLOCK_SKEW_SECONDS} seconds away from the server time`,
      { server_time: input.nowSeconds },
    );
  }
  const provided = SIGNATURE.exec(signature)?.[1]?.toLowerCase();
  if (provided === undefined) {
    throw new UnauthenticatedError('X-Node-Signature must be "v1=" followed by 64 hex characters');
  }

  const agentKey = deriveAgentKey(input.nodeHmacSecret, nodeId);
  const expected = signatureHex(agentKey, canonicalString(timestamp, input.method, input.path, input.rawBody));
  if (!timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(provided, 'hex'))) {
    throw new UnauthenticatedError('X-Node-Signature does not match the request');
  }
  // The normalised hex is the nonce, so re-casing a captured signature cannot replay it.
  if (!(await input.nonceStore.claim(`agent-sig:${provided}`, REPLAY_WINDOW_SECONDS))) {
    throw new UnauthenticatedError('X-Node-Signature has already been used (replayed request)');
  }
  // Node ids are compared with ids read back from the database, which prints uuids in lowercase.
  return nodeId.toLowerCase();
}
