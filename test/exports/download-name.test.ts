// The name an export downloads as: the rule itself, then its Content-Disposition through both
// doors on both object stores (S3 names the download from the presigned URL; the folder store's
// URLs carry the name signed, and the service's download route answers with it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadDisposition } from '../../src/domain/exports/download-name.ts';
import { ExportDownloadUrlDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createStoredExport } from '../support/exports.ts';
import { submitRender } from '../support/jobs.ts';
import { syncSavedProject } from '../support/projects.ts';

const JOB_ID = '0195f3a2-7c4e-7d10-9a6b-8c1d2e3f4a5b';

describe('downloadDisposition', () => {
  it('names the file after the job with the tail of its id, plainly when the name is ASCII', () => {
    expect(downloadDisposition('Summer promo', JOB_ID, 'mp4')).toBe('attachment; filename="Summer promo-2e3f4a5b.mp4"');
    expect(downloadDisposition('  v2.1 final_cut  ', JOB_ID, 'gif')).toBe('attachment; filename="v2.1 final_cut-2e3f4a5b.gif"');
  });

  it('adds filename* (UTF-8) for other names, with an ASCII filename beside it', () => {
    expect(downloadDisposition('Café – été', JOB_ID, 'mp4')).toBe(
      `attachment; filename="Cafe ete-2e3f4a5b.mp4"; filename*=UTF-8''Caf%C3%A9%20%C3%A9t%C3%A9-2e3f4a5b.mp4`,
    );
    expect(downloadDisposition('東京プロモ', JOB_ID, 'mp4')).toBe(
      `attachment; filename="export-2e3f4a5b.mp4"; filename*=UTF-8''${encodeURIComponent('東京プロモ-2e3f4a5b.mp4')}`,
    );
  });

  it('keeps only safe characters: no paths, quotes, line breaks, direction overrides or hidden files', () => {
    expect(downloadDisposition('../../etc/passwd"; x=1\r\nSet-Cookie: a', JOB_ID, 'mp4')).toBe(
      'attachment; filename="etc passwd x 1 Set-Cookie a-2e3f4a5b.mp4"',
    );
    expect(downloadDisposition('gpj.\u202Eevil', JOB_ID, 'mp4')).toBe('attachment; filename="gpj. evil-2e3f4a5b.mp4"');
    expect(downloadDisposition('.hidden', JOB_ID, 'mp4')).toBe('attachment; filename="hidden-2e3f4a5b.mp4"');
    for (const nothing of ['', '   ', '***', '...']) {
      expect(downloadDisposition(nothing, JOB_ID, 'mp4')).toBe('attachment; filename="export-2e3f4a5b.mp4"');
    }
    const long = downloadDisposition('a'.repeat(300), JOB_ID, 'mp4');
    expect(long).toBe(`attachment; filename="${'a'.repeat(80)}-2e3f4a5b.mp4"`);
  });
});

/** A job named after its saved project, and its export's files in the app's store. */
async function namedExport(t: TestApp, projectName: string) {
  const user = await t.user(10_000);
  const { id: projectId } = await syncSavedProject(t, { owner_user_id: user.id, name: projectName, duration_sec: 2 });
  const { id: jobId } = await submitRender(t, user.token, { saved_project_id: projectId, quality: 'Low', price_type: 'Free', frame_rate: undefined, duration_sec: undefined });
  const exported = await createStoredExport(t, user.id, { renderJobId: jobId, savedProjectId: projectId });
  const bytes = { mp4: exported.objects.get(exported.mainKey), gif: exported.objects.get(exported.gifKey) };
  return { user, jobId, exportId: exported.id, bytes, mainKey: exported.mainKey };
}

describe('export downloads on S3', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ startLoops: false });
  });
  afterAll(() => t.close());

  it('answer with the Content-Disposition the presigned URL signs, through REST and GraphQL', async () => {
    const { user, jobId, exportId, bytes } = await namedExport(t, 'Café – été');
    const link = await t.rest('GET', `/v1/exports/${exportId}/download-url`, { token: user.token });
    expect(link.status).toBe(200);
    const expected = downloadDisposition('Café – été', jobId, 'mp4');
    expect(new URL(link.body.url).searchParams.get('response-content-disposition')).toBe(expected);
    const downloaded = await fetch(link.body.url);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get('content-disposition')).toBe(expected);
    expect(Buffer.from(await downloaded.arrayBuffer())).toEqual(bytes.mp4);

    const gql = await t.gql(ExportDownloadUrlDocument, { id: exportId, format: 'gif' }, user.token);
    const gif = await fetch(gql.data?.exportDownloadUrl.url ?? '');
    expect(gif.headers.get('content-disposition')).toBe(downloadDisposition('Café – été', jobId, 'gif'));
    expect(Buffer.from(await gif.arrayBuffer())).toEqual(bytes.gif);
  });
});

describe('export downloads on the folder store', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ startLoops: false, env: { S3_ENDPOINT: '' } });
  });
  afterAll(() => t.close());

  it('answer with the Content-Disposition their URL carries, signed so that it cannot be changed', async () => {
    const { user, jobId, exportId, bytes, mainKey } = await namedExport(t, 'Summer promo');
    const link = await t.rest('GET', `/v1/exports/${exportId}/download-url`, { token: user.token });
    expect(link.status).toBe(200);
    const url = new URL(link.body.url);
    expect(url.pathname).toBe(`/v1/objects/${mainKey}`);
    const expected = downloadDisposition('Summer promo', jobId, 'mp4');
    expect(url.searchParams.get('disposition')).toBe(expected);
    const downloaded = await fetch(url);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get('content-disposition')).toBe(expected);
    expect(Buffer.from(await downloaded.arrayBuffer())).toEqual(bytes.mp4);

    url.searchParams.set('disposition', 'attachment; filename="invoice.exe"');
    const altered = await fetch(url);
    expect(altered.status).toBe(403);
    await altered.arrayBuffer();
  });
});
