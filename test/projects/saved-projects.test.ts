import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemPaths, startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';

let t: TestApp;
let admin: string;
let user: string;

const projectBody = (overrides: Record<string, unknown> = {}) => ({
  owner_user_id: randomUUID(),
  name: 'Summer promo',
  duration_sec: 12.5,
  has_voiceover: true,
  aep_file_md5: 'ABCDEF0123456789abcdef0123456789',
  ae_version: '24.1',
  ...overrides,
});

/** `token: null` sends no Authorization header. */
async function put(id: string, body: unknown, token: string | null = TEST_SERVICE_TOKEN) {
  return t.rest('PUT', `/v1/saved-projects/${id}`, { ...(token !== null ? { token } : {}), body });
}

const stored = (id: string) => t.app.services.db.prisma.savedProject.findUnique({ where: { id } });
const projectCount = () => t.app.services.db.prisma.savedProject.count();

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(randomUUID(), { admin: true });
  user = await t.token(randomUUID());
});
afterAll(() => t.close());

describe('syncing saved project facts', () => {
  it('stores the facts for the studio service and answers them in snake_case', async () => {
    const id = randomUUID();
    const body = projectBody();
    const response = await put(id, body);
    expect(response.status).toBe(200);
    expect(Object.keys(response.body).sort()).toEqual(
      ['id', 'owner_user_id', 'name', 'duration_sec', 'has_voiceover', 'aep_file_md5', 'ae_version', 'updated_at'].sort(),
    );
    expect(response.body).toMatchObject({
      id,
      owner_user_id: body.owner_user_id,
      name: 'Summer promo',
      duration_sec: 12.5,
      has_voiceover: true,
      aep_file_md5: 'abcdef0123456789abcdef0123456789',
      ae_version: '24.1',
    });
    expect(new Date(response.body.updated_at).toISOString()).toBe(response.body.updated_at);
    expect(await stored(id)).toMatchObject({
      ownerUserId: body.owner_user_id,
      name: 'Summer promo',
      durationSec: 12.5,
      hasVoiceover: true,
      aepFileMd5: 'abcdef0123456789abcdef0123456789',
      aeVersion: '24.1',
    });
  });

  it('replaces every fact on a second PUT, defaulting what is left out', async () => {
    const id = randomUUID();
    expect((await put(id, projectBody())).status).toBe(200);
    const before = await projectCount();
    const second = await put(id, { name: 'Winter promo', duration_sec: 30 });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({
      id,
      owner_user_id: null,
      name: 'Winter promo',
      duration_sec: 30,
      has_voiceover: false,
      aep_file_md5: null,
      ae_version: null,
    });
    expect(await projectCount()).toBe(before);
    expect(await stored(id)).toMatchObject({ ownerUserId: null, name: 'Winter promo', durationSec: 30, hasVoiceover: false, aepFileMd5: null });
  });

  it('accepts explicit nulls for the optional facts', async () => {
    const id = randomUUID();
    const response = await put(id, projectBody({ owner_user_id: null, aep_file_md5: null, ae_version: null }));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ owner_user_id: null, aep_file_md5: null, ae_version: null });
  });

  it('lets an admin sync too', async () => {
    const id = randomUUID();
    const response = await put(id, projectBody({ name: 'Admin fix' }), admin);
    expect(response.status).toBe(200);
    expect(response.body.name).toBe('Admin fix');
    expect((await stored(id))?.name).toBe('Admin fix');
  });

  it('refuses users (403) and anonymous or bad credentials (401), writing nothing', async () => {
    const id = randomUUID();
    const before = await projectCount();
    const asUser = await put(id, projectBody(), user);
    expect(asUser.status).toBe(403);
    expect(asUser.body.error.code).toBe('FORBIDDEN');
    const anonymous = await put(id, projectBody(), null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const wrongToken = await put(id, projectBody(), 'not-the-service-token');
    expect(wrongToken.status).toBe(401);
    expect(await stored(id)).toBeNull();
    expect(await projectCount()).toBe(before);

    // A user cannot overwrite an existing project either.
    const existing = randomUUID();
    expect((await put(existing, projectBody({ name: 'Original' }))).status).toBe(200);
    expect((await put(existing, projectBody({ name: 'Hijacked', duration_sec: 0.1 }), user)).status).toBe(403);
    expect(await stored(existing)).toMatchObject({ name: 'Original', durationSec: 12.5 });
  });

  it('refuses bad input with 400 naming the fields, writing nothing', async () => {
    const id = randomUUID();
    const existing = randomUUID();
    expect((await put(existing, projectBody({ name: 'Keep me' }))).status).toBe(200);
    const before = await projectCount();

    const cases: [unknown, string[]][] = [
      [projectBody({ template_id: 'x' }), ['template_id']],
      [projectBody({ colour: 'red' }), ['colour']],
      [projectBody({ duration_sec: -1 }), ['duration_sec']],
      [projectBody({ duration_sec: 0 }), ['duration_sec']],
      [projectBody({ duration_sec: 3601 }), ['duration_sec']],
      [projectBody({ duration_sec: '12' }), ['duration_sec']],
      [projectBody({ aep_file_md5: 'not-an-md5' }), ['aep_file_md5']],
      [projectBody({ aep_file_md5: 'a'.repeat(31) }), ['aep_file_md5']],
      [projectBody({ owner_user_id: 'someone' }), ['owner_user_id']],
      [projectBody({ name: '   ' }), ['name']],
      [projectBody({ has_voiceover: 'yes' }), ['has_voiceover']],
    ];
    for (const [body, paths] of cases) {
      for (const target of [id, existing]) {
        const response = await put(target, body);
        expect(response.status, JSON.stringify(body)).toBe(400);
        expect(response.body.error.code).toBe('VALIDATION_FAILED');
        expect(problemPaths(response.body), JSON.stringify(body)).toEqual(paths);
      }
    }
    expect(await stored(id)).toBeNull();
    expect(await stored(existing)).toMatchObject({ name: 'Keep me', durationSec: 12.5, aepFileMd5: 'abcdef0123456789abcdef0123456789' });
    expect(await projectCount()).toBe(before);
  });

  it('names missing required fields in snake_case', async () => {
    const id = randomUUID();
    const response = await put(id, { has_voiceover: true });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['duration_sec', 'name']);
    expect(await stored(id)).toBeNull();
  });

  it('refuses a non-uuid id, malformed JSON and non-object bodies with 400', async () => {
    const before = await projectCount();
    const notUuid = await put('not-a-uuid', projectBody());
    expect(notUuid.status).toBe(400);
    expect(notUuid.body.error.code).toBe('VALIDATION_FAILED');
    const malformed = await t.rest('PUT', `/v1/saved-projects/${randomUUID()}`, { token: TEST_SERVICE_TOKEN, rawBody: '{"name":' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('VALIDATION_FAILED');
    const array = await put(randomUUID(), [projectBody()]);
    expect(array.status).toBe(400);
    const empty = await t.rest('PUT', `/v1/saved-projects/${randomUUID()}`, { token: TEST_SERVICE_TOKEN, rawBody: '' });
    expect(empty.status).toBe(400);
    expect(await projectCount()).toBe(before);
  });
});
