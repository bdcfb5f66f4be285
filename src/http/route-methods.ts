// The methods each path is routed for. Fastify's router answers a known path asked with another
// method as if the path did not exist; knowing the methods, the service answers 405 with an
// `Allow` header instead, so that a caller learns which method to use.
import type { FastifyInstance } from 'fastify';

/** `/v1/renders/:job_id` matches `/v1/renders/<one segment>`; a `*` segment matches the rest. */
function patternOf(url: string): RegExp {
  const segments = url.split('/').map((segment) => {
    if (segment.startsWith(':')) return '[^/]+';
    if (segment === '*') return '.*';
    return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${segments.join('/')}$`);
}

/**
 * Records every route registered on `app` from now on, so call it before any route is; answers
 * a function giving the methods a path is routed for, sorted (none for an unknown path).
 */
export function trackRouteMethods(app: FastifyInstance): (path: string) => string[] {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    routes.push({ pattern: patternOf(route.url), methods: [route.method].flat() });
  });
  return (path) => [...new Set(routes.filter((route) => route.pattern.test(path)).flatMap((route) => route.methods))].sort();
}
