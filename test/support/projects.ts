// Saved projects as the studio service syncs them: PUT /v1/saved-projects/{id} with a service token.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { type ServiceClient, TEST_SERVICE_TOKEN } from './app.ts';

/** The facts of saved project `id` synced by the studio service, which must be accepted; answers them as stored. */
export async function syncSavedProject(client: ServiceClient, body: Record<string, unknown>, id: string = randomUUID()): Promise<{ id: string } & Record<string, any>> {
  const synced = await client.rest('PUT', `/v1/saved-projects/${id}`, { token: TEST_SERVICE_TOKEN, body });
  expect(synced.status, JSON.stringify(synced.body)).toBe(200);
  return { ...synced.body, id };
}
