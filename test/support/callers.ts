// The callers of admin operations (an admin, a user, a service) and the refusals every admin
// operation gives to the callers who are not admins, through REST and GraphQL.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { TEST_SERVICE_TOKEN, type TestApp } from './app.ts';

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
