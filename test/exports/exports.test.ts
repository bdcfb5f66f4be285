import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExportService } from '../../src/domain/exports/export-service.ts';
import {
  DeleteExportDocument,
  ExportDocument,
  ExportDownloadUrlDocument,
  ExportEntitiesDocument,
  ExportsDocument,
} from '../generated/graphql.ts';
import { download, problemPaths, startTestApp, type TestApp, userActor } from '../support/app.ts';
import { createExportRows, createStoredExport, existingObjects, rowsOf } from '../support/exports.ts';

let t: TestApp;
let adminToken: string;

beforeAll(async () => {
  t = await startTestApp();
  adminToken = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t.close());

describe('listing exports', () => {
  it('pages through the caller’s exports, newest first, 20 a page, over REST', async () => {
    const user = await t.user();
    const base = Date.now() - 3600_000;
    const full = await createStoredExport(t, user.id, { produceDate: new Date(base + 30 * 60_000) });
    // Rows alone are enough to list; the objects of one export show that listing leaves them be.
    await createExportRows(t, user.id, 21, (minute) => ({ path: `exports/${user.id}/${minute}.mp4`, produceDate: new Date(base + minute * 60_000) }));
    await createStoredExport(t, (await t.user()).id);
    const paths = (body: any) => body.data.map((e: { path: string }) => e.path);

    const first = await t.rest('GET', '/v1/exports', { token: user.token });
    expect(first.status).toBe(200);
    expect(first.body.meta).toEqual({ page: 1, page_size: 20, total: 22, has_more: true });
    expect(first.body.data[0].id).toBe(full.id);
    expect(paths(first.body).slice(1)).toEqual(Array.from({ length: 19 }, (_, i) => `exports/${user.id}/${20 - i}.mp4`));
    const second = await t.rest('GET', '/v1/exports?page=2', { token: user.token });
    expect(second.body.meta).toEqual({ page: 2, page_size: 20, total: 22, has_more: false });
    expect(paths(second.body)).toEqual([`exports/${user.id}/1.mp4`, `exports/${user.id}/0.mp4`]);
    const beyond = await t.rest('GET', '/v1/exports?page=3', { token: user.token });
    expect(beyond.body).toEqual({ data: [], meta: { page: 3, page_size: 20, total: 22, has_more: false } });

    expect(Object.keys(first.body.data[0]).sort()).toEqual(
      [
        'id', 'saved_project_id', 'path', 'image', 'size_bytes', 'duration_sec', 'width', 'height', 'file_extension',
        'file_type', 'render_quality', 'create_type', 'produce_date', 'auto_delete_date',
      ].sort(),
    );
    expect(await existingObjects(t.app.services.store, full)).toHaveLength(full.objects.size);
  });

  it('answers the same through the GraphQL connection, with cursors', async () => {
    const user = await t.user();
    const base = Date.now() - 3600_000;
    const made: string[] = [];
    for (let minute = 0; minute < 3; minute++) {
      made.push((await createStoredExport(t, user.id, { produceDate: new Date(base + minute * 60_000) })).id);
    }
    const first = await t.gql(ExportsDocument, { first: 2 }, user.token);
    expect(first.errors).toBeUndefined();
    expect(first.data?.exports.edges.map((edge) => edge.node.id)).toEqual([made[2], made[1]]);
    expect(first.data?.exports.pageInfo.hasNextPage).toBe(true);
    const rest = await t.gql(ExportsDocument, { first: 2, after: first.data?.exports.pageInfo.endCursor }, user.token);
    expect(rest.data?.exports.edges.map((edge) => edge.node.id)).toEqual([made[0]]);
    expect(rest.data?.exports.pageInfo.hasNextPage).toBe(false);
  });

  it('shows admins everyone’s exports', async () => {
    const owner = await t.user();
    const exported = await createStoredExport(t, owner.id);
    const rest = await t.rest('GET', '/v1/exports', { token: adminToken });
    expect(rest.body.data.map((e: { id: string }) => e.id)).toContain(exported.id);
    const gql = await t.gql(ExportsDocument, { first: 100 }, adminToken);
    expect(gql.data?.exports.edges.map((edge) => edge.node.id)).toContain(exported.id);
    const other = await t.user();
    const theirs = await t.rest('GET', '/v1/exports', { token: other.token });
    expect(theirs.body).toEqual({ data: [], meta: { page: 1, page_size: 20, total: 0, has_more: false } });
  });

  it('refuses bad pages with the error body', async () => {
    const user = await t.user();
    for (const query of ['page=0', 'page=x', 'page=-1', 'page=1.5']) {
      const response = await t.rest('GET', `/v1/exports?${query}`, { token: user.token });
      expect(response.status, query).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(response.body)).toEqual(['page']);
    }
  });
});

describe('reading an export', () => {
  it('answers the export with its files over REST and GraphQL', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const rest = await t.rest('GET', `/v1/exports/${exported.id}`, { token: user.token });
    expect(rest.status).toBe(200);
    expect(rest.body).toMatchObject({
      id: exported.id,
      path: exported.mainKey,
      size_bytes: exported.objects.get(exported.mainKey)!.length,
      duration_sec: 12.5,
      width: 1920,
      height: 1080,
      file_extension: 'mp4',
      file_type: 'video',
      render_quality: 'High',
      create_type: 'render',
    });
    expect(rest.body.files.map((file: { file_type: string; path: string }) => [file.file_type, file.path])).toEqual([
      ['gif', exported.gifKey],
      ['webm', exported.webmKey],
    ]);
    expect(Object.keys(rest.body.files[0]).sort()).toEqual(['file_type', 'id', 'path', 'size_bytes', 'thumbnail']);
    expect(rest.body.files[1]).not.toHaveProperty('thumbnail');

    const gql = await t.gql(ExportDocument, { id: exported.id }, user.token);
    expect(gql.errors).toBeUndefined();
    expect(gql.data?.export).toMatchObject({ id: exported.id, userId: user.id, path: exported.mainKey, renderQuality: 'High' });
    expect(gql.data?.export.autoDeleteDate).toBe(rest.body.auto_delete_date);
    expect(gql.data?.export.files.map((file) => file.fileType)).toEqual(['gif', 'webm']);
  });

  it('resolves the Export entity for the gateway, only for those who may see it', async () => {
    const owner = await t.user();
    const exported = await createStoredExport(t, owner.id);
    const representations = [{ __typename: 'Export', id: exported.id }];
    const mine = await t.gql(ExportEntitiesDocument, { representations }, owner.token);
    expect(mine.data?._entities).toEqual([{ __typename: 'Export', id: exported.id, userId: owner.id }]);
    const other = await t.user();
    const theirs = await t.gql(ExportEntitiesDocument, { representations }, other.token);
    expect(theirs.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('answers 404 for another user’s export and an unknown one, 400 for a bad id, 401 without a token', async () => {
    const owner = await t.user();
    const exported = await createStoredExport(t, owner.id);
    const other = await t.user();
    for (const id of [exported.id, randomUUID()]) {
      const response = await t.rest('GET', `/v1/exports/${id}`, { token: other.token });
      expect(response.status).toBe(404);
      expect(response.body.error).toMatchObject({ code: 'NOT_FOUND', details: { entity: 'export', id } });
      const gql = await t.gql(ExportDocument, { id }, other.token);
      expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
    const admin = await t.rest('GET', `/v1/exports/${exported.id}`, { token: adminToken });
    expect(admin.status).toBe(200);
    const badId = await t.rest('GET', '/v1/exports/not-a-uuid', { token: owner.token });
    expect(badId.status).toBe(400);
    expect(badId.body.error.code).toBe('VALIDATION_FAILED');
    const gqlBadId = await t.gql(ExportDocument, { id: 'not-a-uuid' }, owner.token);
    expect(gqlBadId.data).toBeUndefined();
    expect(gqlBadId.errors?.length).toBeGreaterThan(0);
    const anonymous = await t.rest('GET', `/v1/exports/${exported.id}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const gqlAnonymous = await t.gql(ExportDocument, { id: exported.id });
    expect(gqlAnonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('download URLs', () => {
  it('download the exact bytes of each format from S3, mp4 by default', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const before = Date.now();
    const mp4 = await t.rest('GET', `/v1/exports/${exported.id}/download-url`, { token: user.token });
    expect(mp4.status).toBe(200);
    expect(Object.keys(mp4.body).sort()).toEqual(['expires_at', 'url']);
    const expiresAt = Date.parse(mp4.body.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 299_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 301_000);
    const fetched = await download(mp4.body.url);
    expect(fetched.status).toBe(200);
    expect(fetched.bytes.equals(exported.objects.get(exported.mainKey)!)).toBe(true);

    const gif = await t.rest('GET', `/v1/exports/${exported.id}/download-url?format=GIF`, { token: user.token });
    expect(gif.status).toBe(200);
    expect((await download(gif.body.url)).bytes.equals(exported.objects.get(exported.gifKey)!)).toBe(true);

    const webm = await t.gql(ExportDownloadUrlDocument, { id: exported.id, format: 'webm' }, user.token);
    expect(webm.errors).toBeUndefined();
    expect((await download(webm.data!.exportDownloadUrl.url)).bytes.equals(exported.objects.get(exported.webmKey)!)).toBe(true);
    const gqlDefault = await t.gql(ExportDownloadUrlDocument, { id: exported.id }, user.token);
    expect((await download(gqlDefault.data!.exportDownloadUrl.url)).bytes.equals(exported.objects.get(exported.mainKey)!)).toBe(
      true,
    );
  });

  it('answers 404 for a format the export does not have and 400 for one that is not a format', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const missing = await t.rest('GET', `/v1/exports/${exported.id}/download-url?format=mov`, { token: user.token });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
    expect(missing.body.error.message).toContain('mov');
    const gql = await t.gql(ExportDownloadUrlDocument, { id: exported.id, format: 'mov' }, user.token);
    expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    for (const format of ['', 'mp4;rm', '../video', 'a'.repeat(17)]) {
      const bad = await t.rest('GET', `/v1/exports/${exported.id}/download-url?format=${encodeURIComponent(format)}`, {
        token: user.token,
      });
      expect(bad.status, format).toBe(400);
      expect(problemPaths(bad.body)).toEqual(['format']);
    }
    const twice = await t.rest('GET', `/v1/exports/${exported.id}/download-url?format=mp4&format=gif`, { token: user.token });
    expect(twice.status).toBe(400);
  });

  it('are for the owner and admins only', async () => {
    const owner = await t.user();
    const exported = await createStoredExport(t, owner.id);
    const other = await t.user();
    const theirs = await t.rest('GET', `/v1/exports/${exported.id}/download-url`, { token: other.token });
    expect(theirs.status).toBe(404);
    const gql = await t.gql(ExportDownloadUrlDocument, { id: exported.id }, other.token);
    expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await t.rest('GET', `/v1/exports/${exported.id}/download-url`)).status).toBe(401);
    const admin = await t.rest('GET', `/v1/exports/${exported.id}/download-url`, { token: adminToken });
    expect(admin.status).toBe(200);
    expect((await download(admin.body.url)).bytes.equals(exported.objects.get(exported.mainKey)!)).toBe(true);
  });

  it('stop working when they expire', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const { prisma } = t.app.services.db;
    const shortLived = createExportService({ prisma, store: t.app.services.store, clock: t.app.services.clock, downloadUrlTtlSeconds: 1 });
    const { url, expiresAt } = await shortLived.downloadUrl(userActor(user.id), exported.id, 'gif');
    expect((await download(url)).bytes.equals(exported.objects.get(exported.gifKey)!)).toBe(true);
    // s3rver checks expiry by its own clock, to the second.
    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 1_200);
    const expired = await download(url);
    expect(expired.status).toBe(403);
    expect(expired.bytes.toString()).toContain('expired');
  });
});

describe('deleting an export', () => {
  it('removes every object and row over REST; the old URLs stop working and a repeat is 404', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const kept = await createStoredExport(t, user.id);
    const url = (await t.rest('GET', `/v1/exports/${exported.id}/download-url`, { token: user.token })).body.url as string;
    expect((await download(url)).status).toBe(200);

    const response = await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: user.token });
    expect(response.status).toBe(204);
    expect(response.body).toBe('');
    expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
    expect(await rowsOf(t, exported.id)).toEqual({ exports: 0, files: 0 });
    expect((await download(url)).status).toBe(404);
    expect((await t.rest('GET', `/v1/exports/${exported.id}`, { token: user.token })).status).toBe(404);

    const again = await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: user.token });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('NOT_FOUND');

    expect(await existingObjects(t.app.services.store, kept)).toHaveLength(kept.objects.size);
    expect(await rowsOf(t, kept.id)).toEqual({ exports: 1, files: 2 });
  });

  it('does the same through GraphQL', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const result = await t.gql(DeleteExportDocument, { id: exported.id }, user.token);
    expect(result.data?.deleteExport).toEqual({ __typename: 'DeletedExport', id: exported.id });
    expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
    expect(await rowsOf(t, exported.id)).toEqual({ exports: 0, files: 0 });
    const again = await t.gql(DeleteExportDocument, { id: exported.id }, user.token);
    expect(again.data?.deleteExport).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('leaves another user’s export alone (404), refuses anonymous callers and bad ids; admins may delete', async () => {
    const owner = await t.user();
    const exported = await createStoredExport(t, owner.id);
    const other = await t.user();
    const rest = await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: other.token });
    expect(rest.status).toBe(404);
    expect(rest.body.error.code).toBe('NOT_FOUND');
    const gql = await t.gql(DeleteExportDocument, { id: exported.id }, other.token);
    expect(gql.data?.deleteExport.__typename).toBe('NotFoundError');
    expect((await t.rest('DELETE', `/v1/exports/${exported.id}`)).status).toBe(401);
    const anonymous = await t.gql(DeleteExportDocument, { id: exported.id });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const badId = await t.rest('DELETE', '/v1/exports/12345', { token: owner.token });
    expect(badId.status).toBe(400);
    expect(badId.body.error.code).toBe('VALIDATION_FAILED');
    expect(await existingObjects(t.app.services.store, exported)).toHaveLength(exported.objects.size);
    expect(await rowsOf(t, exported.id)).toEqual({ exports: 1, files: 2 });

    expect((await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: adminToken })).status).toBe(204);
    expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
  });

  it('keeps the row when an object cannot be deleted, so that a retry finishes the job', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const { store, db, clock } = t.app.services;
    const failing = createExportService({
      prisma: db.prisma,
      clock,
      store: {
        ...store,
        delete: async (key) => {
          if (key === exported.gifKey) throw new Error('store unavailable');
          await store.delete(key);
        },
      },
    });
    await expect(failing.delete(userActor(user.id), exported.id)).rejects.toThrow('store unavailable');
    expect(await rowsOf(t, exported.id)).toEqual({ exports: 1, files: 2 });
    expect(await existingObjects(store, exported)).toContain(exported.gifKey);

    expect((await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: user.token })).status).toBe(204);
    expect(await existingObjects(store, exported)).toEqual([]);
    expect(await rowsOf(t, exported.id)).toEqual({ exports: 0, files: 0 });
  });

  it('deletes once when the same delete arrives twice at once', async () => {
    const user = await t.user();
    const exported = await createStoredExport(t, user.id);
    const statuses = await Promise.all(
      [1, 2].map(async () => (await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: user.token })).status),
    );
    expect(statuses.sort()).toEqual([204, 404]);
    expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
  });
});
