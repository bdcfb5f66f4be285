// The contract's browser WebSocket, /ws/v1/render/{job_id}: one job's RenderProgress as JSON
// messages (the REST shape), fed by the same events as the GraphQL subscription and closed with
// 1000 once they end with the job's terminal step. Browsers cannot set headers on a WebSocket, so
// the token may also come as `?token=` (or `?access_token=`).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { toRestRenderProgress } from '../../rest-compat/serializers.ts';
import type { Services } from '../services.ts';
import { failureOf } from '../transport/errors.ts';

const PATH = /^\/ws\/v1\/render\/([^/]+)$/;

/** Close codes in the private range, mirroring HTTP statuses so clients can tell them apart. */
const closeCodeFor = (status: number) => 4000 + status;

export interface LegacyProgressSockets {
  handles(path: string): boolean;
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

export function createLegacyProgressSockets(services: Services, maxPayload: number): LegacyProgressSockets {
  const server = new WebSocketServer({ noServer: true, maxPayload });

  server.on('connection', (socket, request: IncomingMessage) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const jobId = decodeURIComponent(PATH.exec(url.pathname)?.[1] ?? '');
    const token = url.searchParams.get('token') ?? url.searchParams.get('access_token');
    const authorization = request.headers.authorization ?? (token ? `Bearer ${token}` : undefined);
    let stop: (() => Promise<unknown>) | undefined;
    let closed = false;
    socket.on('close', () => {
      closed = true;
      void stop?.();
    });
    void (async () => {
      const actor = await services.authenticator.fromAuthorization(authorization);
      const events = await services.jobs.watchProgress(actor, jobId);
      stop = () => events.return?.() ?? Promise.resolve();
      if (closed) return void (await stop());
      for await (const progress of events) socket.send(JSON.stringify(toRestRenderProgress(progress)));
      // The events end with the job's terminal step: a normal close tells the client it has them all.
      if (!closed) socket.close(1000, 'job ended');
    })().catch((error: unknown) => {
      if (closed) return;
      // The failures every door answers alike (failureOf): a domain refusal, or the database being
      // away (4503, try again), which the soak saw closed as an internal error.
      const failure = failureOf(error);
      if (failure) socket.close(closeCodeFor(failure.status), failure.code);
      else socket.close(1011, 'INTERNAL');
    });
  });

  return {
    handles: (path) => PATH.test(path),
    upgrade(request, socket, head) {
      server.handleUpgrade(request, socket, head, (client) => server.emit('connection', client, request));
    },
    async close() {
      for (const client of server.clients) client.close(1001, 'server shutting down');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
