import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { overWebSocket } from '../support/graphql-ws.ts';

let t: TestApp;
let user: TestUser;
const logged: Record<string, any>[] = [];

beforeAll(async () => {
  const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  t = await startTestApp({ logger });
  user = await t.user();
});
afterAll(() => t.close());

const WALLET = '{ wallet { balanceMinor } }';

describe('graphql-ws authentication', () => {
  it('accepts a bare token in connection_init, as the Apollo Router and browser clients send it', async () => {
    const answer = await overWebSocket(t.url, WALLET, { connectionParams: { token: user.token } });
    expect(answer).toEqual({ data: { wallet: { balanceMinor: 0 } } });
    // Unauthenticated, the same query is refused: the token above is what authenticated it.
    expect((await overWebSocket(t.url, WALLET, {})).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('accepts Authorization in connection_init and the upgrade request header, and refuses a bad token in any of them', async () => {
    expect((await overWebSocket(t.url, WALLET, { connectionParams: { Authorization: `Bearer ${user.token}` } })).data).toEqual({ wallet: { balanceMinor: 0 } });
    expect((await overWebSocket(t.url, WALLET, { connectionParams: { authorization: `Bearer ${user.token}` } })).data).toEqual({ wallet: { balanceMinor: 0 } });
    expect((await overWebSocket(t.url, WALLET, { headers: { authorization: `Bearer ${user.token}` } })).data).toEqual({ wallet: { balanceMinor: 0 } });
    expect((await overWebSocket(t.url, WALLET, { connectionParams: { token: `Bearer ${user.token}` } })).data).toEqual({ wallet: { balanceMinor: 0 } });
    expect(await overWebSocket(t.url, WALLET, { connectionParams: { token: 'not-a-token' } })).toEqual({ closedWith: 4403 });
    expect(await overWebSocket(t.url, WALLET, { connectionParams: { token: user.token.slice(0, -2) } })).toEqual({ closedWith: 4403 });
  });
});

describe('an unexpected failure while building the GraphQL context', () => {
  it('is masked, names the request and is logged under its id', async () => {
    const { authenticator } = t.app.services;
    const fromAuthorization = authenticator.fromAuthorization;
    // The key set's client failing in a way nobody foresaw: what reaches the context is a plain Error.
    authenticator.fromAuthorization = async () => {
      throw new Error('jwks client blew up at https://identity.internal/keys');
    };
    try {
      const response = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}`, 'x-request-id': 'context-failure-1' },
        body: JSON.stringify({ query: WALLET }),
      });
      const text = await response.text();
      expect(response.status).toBe(500);
      expect(JSON.parse(text)).toEqual({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'context-failure-1' } }] });
      expect(text).not.toContain('identity.internal');
      const entry = logged.find((line) => line.reqId === 'context-failure-1');
      expect(entry?.err?.message).toContain('jwks client blew up');
    } finally {
      authenticator.fromAuthorization = fromAuthorization;
    }
  });
});
