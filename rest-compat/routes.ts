import type { FastifyInstance } from 'fastify';
import type { FolderObjectStore } from '../src/adapters/storage/folder-store.ts';
import type { Services } from '../src/services.ts';
import { type Admit, mountRoutes } from './route.ts';
import { exportRoutes } from './routes/exports.ts';
import { internalRoutes } from './routes/internal.ts';
import { jobRoutes } from './routes/jobs.ts';
import { nodeAdminRoutes } from './routes/node-admin.ts';
import { nodeUpdateRoutes } from './routes/node-updates.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { savedProjectRoutes } from './routes/saved-projects.ts';
import { snapshotRoutes } from './routes/snapshots.ts';

/** Every route served under /v1 but the embedded store's downloads. */
export const restRoutes = [...jobRoutes, ...nodeRoutes, ...internalRoutes, ...savedProjectRoutes, ...exportRoutes, ...nodeAdminRoutes, ...nodeUpdateRoutes, ...snapshotRoutes];

/** The REST contract (rest-compat/openapi.yaml) mounted under /v1. */
export function registerRestRoutes(
  app: FastifyInstance,
  services: Services,
  options: { folderStore?: FolderObjectStore; admit?: Admit },
): void {
  void app.register(
    async (v1) => {
      mountRoutes(v1, services, restRoutes, options.admit);
      const folderStore = options.folderStore;
      if (folderStore) {
        // Signed download URLs of the embedded object store (S3 serves its own).
        v1.get('/objects/*', async (request, reply) => {
          const key = decodeURIComponent((request.params as { '*': string })['*']);
          const query = request.query as { expires?: string; signature?: string; disposition?: string; disposition_signature?: string };
          const object = await folderStore.readSigned(key, query.expires, query.signature, {
            value: query.disposition,
            signature: query.disposition_signature,
          });
          if (object.contentDisposition) reply.header('content-disposition', object.contentDisposition);
          return reply
            .header('content-type', object.contentType)
            .header('content-length', object.size)
            .header('cache-control', 'private, no-store')
            .send(object.body);
        });
      }
    },
    { prefix: '/v1' },
  );
}
