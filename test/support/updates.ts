// Agent updates as an admin publishes them: POST /v1/node-updates.
import { expect } from 'vitest';
import type { ServiceClient, TestNode } from './app.ts';

let lastNumber = 7000;

/** The body of a new update, numbered after every update this test file made so far. */
export const updateBody = (overrides: Record<string, unknown> = {}) => ({
  update_file_name: 'agent-setup.msi',
  update_number: ++lastNumber,
  description: 'Faster uploads',
  target_ae_version: '24.1',
  sha256: 'ab'.repeat(32),
  download_url: 'https://downloads.example.com/agent-setup.msi',
  ...overrides,
});

/** An update published by an admin (updateBody with the overrides), which must be accepted; the update as answered. */
export async function createNodeUpdate(
  client: ServiceClient,
  adminToken: string,
  overrides: Record<string, unknown> = {},
): Promise<{ id: string; update_number: number } & Record<string, any>> {
  const created = await client.rest('POST', '/v1/node-updates', { token: adminToken, body: updateBody(overrides) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

/** Online nodes that run agent 1.0.0, to roll updates out to. */
export async function rolloutFleet(client: ServiceClient, size: number): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  for (let index = 0; index < size; index++) nodes.push(await client.onlineNode(undefined, { agentVersion: '1.0.0' }));
  return nodes;
}

/** The update rolled out by an admin to the nodes, the first as the canary (POST /v1/node-updates/{id}/rollout); the rollout as answered. */
export async function startRollout(client: ServiceClient, adminToken: string, updateId: string, nodes: TestNode[]): Promise<Record<string, any>> {
  const response = await client.rest('POST', `/v1/node-updates/${updateId}/rollout`, {
    token: adminToken,
    body: { node_ids: nodes.map((node) => node.id) },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body;
}

/** The node's agent reports the update installed, signed at `timestamp` when given. */
export const reportApplied = (client: ServiceClient, node: TestNode, updateId: string, version = '2.0.0', options: { timestamp?: number } = {}) =>
  client.signed(node, 'POST', `/v1/internal/nodes/${node.id}/updates/${updateId}/applied`, { node_agent_version: version }, options);
