// Agent updates as an admin publishes them: POST /v1/node-updates.
import { expect } from 'vitest';
import type { ServiceClient } from './app.ts';

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
