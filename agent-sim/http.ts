// The fleet's one connection pool. Plain node:http rather than fetch: thousands of simulated
// agents share a bounded set of keep-alive sockets, and each request costs a few small objects.
import http from 'node:http';
import https from 'node:https';
import { signAgentRequest } from '../src/adapters/auth/agent-signature.ts';

export interface Answer {
  /** 0 when no HTTP answer came (connection refused, reset, timed out). */
  status: number;
  body: any;
  /** `error.code` of the service's error body, when there is one. */
  code?: string;
  /** Why no answer came, when status is 0. */
  failure?: string;
  /** The Retry-After seconds of a 503 or 429. */
  retryAfterSec?: number;
  /** Date.now() when the request went out: what the service holds was written after it. */
  sentAt?: number;
}

/** The `failure` of a request its node gave up before it was sent (the node died or stopped). */
export const ABANDONED = 'abandoned before sending';

export interface AgentIdentity {
  id: string;
  agentKey: string;
  /** How far the agent's clock is off, in seconds: its signatures carry its own time. */
  clockSkewSec?: number;
}

export interface TransportOptions {
  connections: number;
  timeoutMs?: number;
}

function parseAnswer(status: number, contentType: string | undefined, raw: Buffer): Answer {
  if (raw.length === 0) return { status, body: undefined };
  if (!contentType?.includes('application/json')) return { status, body: raw.toString('utf8') };
  try {
    const body = JSON.parse(raw.toString('utf8')) as any;
    const code = body?.error?.code;
    return { status, body, ...(typeof code === 'string' ? { code } : {}) };
  } catch {
    return { status, body: raw.toString('utf8') };
  }
}

/**
 * The service claims every signature as a nonce, so the same request signed twice in the same
 * second (a retried online, a re-sent acknowledgement) would be refused as a replay. Such a
 * request waits for the next second instead. Only the current second's fingerprints are kept.
 */
class ReplayGuard {
  private second = 0;
  private readonly used = new Set<string>();

  async timestamp(fingerprint: string): Promise<number> {
    for (;;) {
      const now = Date.now();
      const second = Math.floor(now / 1000);
      if (second !== this.second) {
        this.second = second;
        this.used.clear();
      }
      if (!this.used.has(fingerprint)) {
        this.used.add(fingerprint);
        return second;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 - (now % 1000) + 1));
    }
  }
}

export class Transport {
  private readonly agent: http.Agent;
  private readonly send: typeof http.request;
  /** Replicas of one service (the same path prefix); a node that gets no answer tries the next. */
  private readonly origins: URL[];
  /** A service behind a path prefix sees (and verifies signatures over) the prefixed path. */
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly replay = new ReplayGuard();

  constructor(url: string | readonly string[], options: TransportOptions) {
    const urls = typeof url === 'string' ? [url] : url;
    if (urls.length === 0) throw new Error('Give the service URL');
    this.origins = urls.map((each) => new URL(each));
    const [first] = this.origins as [URL, ...URL[]];
    for (const origin of this.origins) {
      if (origin.protocol !== 'http:' && origin.protocol !== 'https:') {
        throw new Error(`The service URL must be http or https, got "${origin.href}"`);
      }
      if (origin.protocol !== first.protocol || origin.pathname !== first.pathname) {
        throw new Error('The service URLs must share their scheme and path');
      }
    }
    const secure = first.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections };
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.send = secure ? https.request : http.request;
    this.prefix = first.pathname.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** How many replicas requests can go to; `endpoint` arguments count modulo this. */
  get endpoints(): number {
    return this.origins.length;
  }

  request(method: string, path: string, headers: Record<string, string>, body?: string | Buffer, endpoint = 0): Promise<Answer> {
    const origin = this.origins[endpoint % this.origins.length] as URL;
    const sentAt = Date.now();
    return new Promise((resolve) => {
      let settled = false;
      const settle = (answer: Answer) => {
        if (settled) return;
        settled = true;
        resolve({ ...answer, sentAt });
      };
      const request = this.send({
        protocol: origin.protocol,
        hostname: origin.hostname,
        port: origin.port,
        method,
        path,
        agent: this.agent,
        timeout: this.timeoutMs,
        headers: { ...headers, 'content-length': String(body === undefined ? 0 : Buffer.byteLength(body)) },
      });
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const answer = parseAnswer(response.statusCode ?? 0, response.headers['content-type'], Buffer.concat(chunks));
          const retryAfter = Number(response.headers['retry-after']);
          settle(Number.isFinite(retryAfter) && retryAfter > 0 ? { ...answer, retryAfterSec: retryAfter } : answer);
        });
        response.on('error', (error) => settle({ status: 0, body: undefined, failure: error.message }));
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      request.on('error', (error) => settle({ status: 0, body: undefined, failure: error.message }));
      request.end(body);
    });
  }

  /** A request of a user or service: `Authorization: Bearer`. `path` starts at /v1. */
  bearer(token: string, method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return this.request(
      method,
      this.prefix + path,
      { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      payload,
    );
  }

  /**
   * A request signed as the node agent. A Buffer body goes as application/octet-stream.
   * `stillWanted` is asked again after a wait for a fresh signature second, so a node that died
   * meanwhile sends nothing.
   */
  async signed(
    node: AgentIdentity,
    method: string,
    path: string,
    body?: unknown,
    stillWanted: () => boolean = () => true,
    endpoint = 0,
  ): Promise<Answer> {
    const fullPath = this.prefix + path;
    let payload: string | Buffer | undefined;
    let contentType: string | undefined;
    let fingerprint: string;
    if (Buffer.isBuffer(body)) {
      payload = body;
      contentType = 'application/octet-stream';
      fingerprint = `${node.id} ${method} ${fullPath} #${body.length}`;
    } else {
      payload = body === undefined ? undefined : JSON.stringify(body);
      contentType = payload === undefined ? undefined : 'application/json';
      fingerprint = `${node.id} ${method} ${fullPath} ${payload ?? ''}`;
    }
    const timestamp = await this.replay.timestamp(fingerprint);
    if (!stillWanted()) return { status: 0, body: undefined, failure: ABANDONED };
    const headers: Record<string, string> = {
      ...signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method, path: fullPath, body: payload, timestamp: timestamp + (node.clockSkewSec ?? 0) }),
      ...(contentType ? { 'content-type': contentType } : {}),
    };
    return this.request(method, fullPath, headers, payload, endpoint);
  }

  close(): void {
    this.agent.destroy();
  }
}
