// Nodes, clocks and callers for the node administration tests, each one line in a test.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Clock } from '../../src/ports.ts';
import { TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';

export interface TestNode {
  id: string;
  agentKey: string;
  name: string;
}

export interface Callers {
  admin: string;
  adminId: string;
  user: string;
  service: string;
}

export async function callers(t: TestApp): Promise<Callers> {
  const adminId = randomUUID();
  return {
    admin: await t.token(adminId, { admin: true }),
    adminId,
    user: await t.token(randomUUID()),
    service: TEST_SERVICE_TOKEN,
  };
}

export async function registerNode(t: TestApp, admin: string, overrides: Record<string, unknown> = {}): Promise<TestNode> {
  const name = `node-${randomUUID().slice(0, 8)}`;
  const response = await t.rest('POST', '/v1/nodes', {
    token: admin,
    body: { name, region: 'eu-west', node_ip: '10.0.0.1', worker_port: 8181, current_ae_version: '24.1', ...overrides },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return { id: response.body.id, agentKey: response.body.agent_key, name };
}

/** A node that reported it started, so it is Online with a fresh heartbeat. */
export async function onlineNode(t: TestApp, admin: string): Promise<TestNode> {
  const node = await registerNode(t, admin);
  const online = await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/online`, { node_agent_version: '1.0.0' });
  expect(online.status).toBe(200);
  return node;
}

export async function heartbeat(t: TestApp, node: TestNode, body: Record<string, unknown> = {}) {
  const response = await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/heartbeat`, body);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body as { next_heartbeat_in_sec: number; pending_commands: Record<string, any>[] };
}

/** Real time plus an offset the test moves; tokens and signatures are checked by it too. */
export function controllableClock(): Clock & { advance(ms: number): void; set(date: Date): void; reset(): void } {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance: (ms) => {
      offsetMs += ms;
    },
    set: (date) => {
      offsetMs = date.getTime() - Date.now();
    },
    reset: () => {
      offsetMs = 0;
    },
  };
}

/** The four refusals every admin operation gives to callers who are not admins. */
export async function expectAdminOnly(
  t: TestApp,
  who: Callers,
  method: string,
  path: string,
  body?: unknown,
): Promise<void> {
  const anonymous = await t.rest(method, path, { body });
  expect(anonymous.status).toBe(401);
  expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
  for (const token of [who.user, who.service]) {
    const refused = await t.rest(method, path, { token, body });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FORBIDDEN');
  }
}

/** The refusals a GraphQL operation gives to callers who are not admins. */
export async function expectGraphQLAdminOnly(call: (token?: string) => Promise<{ errors?: { extensions?: Record<string, any> }[] }>, who: Callers) {
  expect((await call()).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  expect((await call(who.user)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  expect((await call(who.service)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
}

export const problemPaths = (body: any): string[] =>
  body.error.details.problems.map((problem: { path: string }) => problem.path).sort();
