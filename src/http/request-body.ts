// The bodies the service reads: JSON, and the agents' encoded outputs as bytes. Any other body is
// refused with 415 instead of reaching a service as a string. Each keeps its bytes as received in
// request.rawBody (declared where REST reads it, for the agent signatures that cover them).
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../domain/errors.ts';

export function acceptBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // The routes that accept uploads set their own body limit.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    done(null, body);
  });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch {
      done(new ValidationError('The request body is not valid JSON', [{ path: 'body', message: 'is not valid JSON' }]), undefined);
    }
  });
}
