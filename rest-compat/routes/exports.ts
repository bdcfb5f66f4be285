import type { Export, ExportFile } from '../../src/generated/prisma/client.ts';
import type { RestRoute } from '../route.ts';
import { toRestExport, toRestExportFile } from '../serializers.ts';

function toRestExportDetail(exported: Export & { files: ExportFile[] }) {
  return { ...toRestExport(exported), files: exported.files.map(toRestExportFile) };
}

export const exportRoutes: RestRoute[] = [
  {
    method: 'GET',
    url: '/exports',
    door: 'caller',
    status: 200,
    async handle({ actor, query }, { exports }) {
      const page = await exports.list(actor, { page: query.page as number });
      return {
        data: page.data.map(toRestExport),
        meta: { page: page.meta.page, page_size: page.meta.pageSize, total: page.meta.total, has_more: page.meta.hasMore },
      };
    },
  },
  {
    method: 'GET',
    url: '/exports/:export_id',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { exports }) {
      const exported = await exports.get(actor, params.export_id ?? '', {
        include: { files: { orderBy: { fileType: 'asc' } } },
      });
      return toRestExportDetail(exported);
    },
  },
  {
    method: 'DELETE',
    url: '/exports/:export_id',
    door: 'caller',
    status: 204,
    async handle({ actor, params }, { exports }) {
      await exports.delete(actor, params.export_id ?? '');
    },
  },
  {
    method: 'POST',
    url: '/exports/:export_id/extend',
    door: 'caller',
    status: 200,
    async handle({ actor, params, body }, { exports }) {
      const extension = await exports.extend(actor, params.export_id ?? '', body as never);
      return { new_auto_delete_date: extension.newAutoDeleteDate.toISOString() };
    },
  },
  {
    method: 'GET',
    url: '/exports/:export_id/download-url',
    door: 'caller',
    status: 200,
    async handle({ actor, params, query }, { exports }) {
      const download = await exports.downloadUrl(actor, params.export_id ?? '', query.format as string | undefined);
      return { url: download.url, expires_at: download.expiresAt.toISOString() };
    },
  },
];
