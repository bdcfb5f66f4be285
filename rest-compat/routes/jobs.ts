import { CHUNK_ORDER } from '../../src/domain/work/recut.ts';
import type { RestRoute } from '../route.ts';
import { toRestJobLog, toRestRenderJob, toRestRenderJobDetail, toRestRenderProgress } from '../serializers.ts';

const withExportId = { include: { export: { select: { id: true } } } } as const;

export const jobRoutes: RestRoute[] = [
  {
    method: 'GET',
    url: '/renders',
    door: 'caller',
    status: 200,
    async handle({ actor, query }, { jobs }) {
      const page = await jobs.list(
        actor,
        { status: query.status as string | undefined, page: query.page as number, pageSize: query.pageSize as number },
        withExportId,
      );
      return {
        data: page.data.map(toRestRenderJob),
        meta: { page: page.meta.page, page_size: page.meta.pageSize, total: page.meta.total, has_more: page.meta.hasMore },
      };
    },
  },
  {
    method: 'POST',
    url: '/renders',
    door: 'caller',
    status: 201,
    headers: { idempotencyKey: 'Idempotency-Key' },
    async handle({ actor, body, headers }, { jobs }) {
      const job = await jobs.submit(actor, body as never, { idempotencyKey: headers.idempotencyKey });
      return toRestRenderJob(job);
    },
  },
  {
    method: 'GET',
    url: '/renders/:job_id',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { jobs }) {
      const job = await jobs.get(actor, params.job_id ?? '', {
        include: { frameJobs: { orderBy: CHUNK_ORDER }, export: true },
      });
      return toRestRenderJobDetail(job);
    },
  },
  {
    method: 'POST',
    url: '/renders/:job_id/cancel',
    door: 'caller',
    status: 200,
    async handle({ actor, params, body }, { jobs }) {
      const result = await jobs.cancel(actor, params.job_id ?? '', body);
      return { cancelled: result.cancelled, refund_amount_minor: Number(result.refundAmountMinor) };
    },
  },
  {
    method: 'POST',
    url: '/renders/:job_id/retry',
    door: 'caller',
    status: 201,
    async handle({ actor, params }, { jobs }) {
      return toRestRenderJob(await jobs.retry(actor, params.job_id ?? ''));
    },
  },
  {
    method: 'GET',
    url: '/renders/:job_id/progress',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { jobs }) {
      return toRestRenderProgress(await jobs.progress(actor, params.job_id ?? ''));
    },
  },
  {
    method: 'GET',
    url: '/renders/:job_id/logs',
    door: 'caller',
    status: 200,
    async handle({ actor, params, query }, { jobs }) {
      const lines = await jobs.logs(actor, params.job_id ?? '', { level: query.level as never });
      return { logs: lines.map(toRestJobLog) };
    },
  },
];
