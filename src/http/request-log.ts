// One line per request, once answered, instead of Fastify's two. Agents' routine traffic (every
// node heartbeats every few seconds and reports every frame) logs at debug, so info holds what
// people and services did and every agent request that was refused.
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

export class RequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply);
    const routine = reply.statusCode < 400 && request.url.startsWith('/v1/internal/');
    const fields = { method: request.method, url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime };
    if (routine) reply.log.debug(fields, 'request completed');
    else reply.log.info(fields, 'request completed');
  }
}
