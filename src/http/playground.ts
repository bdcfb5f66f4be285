// The admin GraphQL playground at /playground: GraphiQL served from this service's own routes.
//
// graphiql@3, because it is the last major with a ready-made browser bundle (a global over React
// 18's UMD builds, which React 19 no longer ships): plain <script> tags, no bundler and no import
// map. GraphiQL 4 and 5 are ES modules importing React, Monaco and their workers by bare name,
// which a browser cannot load without a build step or a CDN that rewrites them.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ADMIN_PAGE_POLICY, assetOf, packageAsset, sendAsset, serveAssets } from './static-assets.ts';

const DEFAULT_HEADERS = JSON.stringify({ Authorization: 'Bearer ' }, null, 2);

const DEFAULT_QUERY = `# Paste a token after "Bearer " in the Headers editor below (npm run token -- --sub <uuid>).
# Subscriptions run over graphql-ws on the same URL, with those headers as connection params.
{
  renderJobs(first: 5) {
    edges {
      node {
        id
        step
      }
    }
  }
}
`;

// Runs in the browser, over the globals of the bundles loaded before it.
const PLAYGROUND_SCRIPT = `"use strict";
(() => {
  const httpUrl = new URL('/graphql', location.href).href;
  const wsUrl = httpUrl.replace(/^http/, 'ws');
  const http = GraphiQL.createFetcher({ url: httpUrl });

  // "Bearer " without a token is the untouched default: sent, the server would refuse it, and the
  // schema (completion, docs) would not load until a token is pasted.
  const usable = (headers) =>
    Object.fromEntries(
      Object.entries(headers || {}).filter(
        ([name, value]) => !(name.toLowerCase() === 'authorization' && /^\\s*bearer\\s*$/i.test(String(value))),
      ),
    );

  const isSubscription = (ast, operationName) =>
    (ast ? ast.definitions : []).some(
      (definition) =>
        definition.kind === 'OperationDefinition' &&
        definition.operation === 'subscription' &&
        (!operationName || (definition.name && definition.name.value === operationName)),
    );

  // One client per subscription, the headers as its connection params (the server reads
  // Authorization there); being lazy, it closes its socket once the subscription ends. No
  // retries: a refused token shows at once, not after a backoff. The iterator is graphql-ws's
  // own, not an async generator around it: a generator waiting for the next event would hold
  // GraphiQL's stop until that event came.
  const subscribe = (params, headers) => {
    const client = graphqlWs.createClient({ url: wsUrl, connectionParams: headers, retryAttempts: 0 });
    const events = client.iterate(params);
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: () =>
        events.next().catch((error) => {
          throw error instanceof CloseEvent
            ? new Error('The server closed the connection: ' + error.code + ' ' + error.reason)
            : error;
        }),
      return: () => events.return(),
    };
  };

  const fetcher = (params, options) => {
    const headers = usable(options && options.headers);
    return isSubscription(options && options.documentAST, params.operationName)
      ? subscribe(params, headers)
      : http(params, { ...options, headers });
  };

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: ${JSON.stringify(DEFAULT_QUERY)},
      defaultHeaders: ${JSON.stringify(DEFAULT_HEADERS)},
      defaultEditorToolsVisibility: 'headers',
    }),
  );
})();
`;

/** The weight (q) the Accept header gives a media type, by its most specific entry that names it; 0 when none does. */
function weightOf(accept: string, type: string): number {
  const [major] = type.split('/');
  let best = { specificity: -1, q: 0 };
  for (const entry of accept.split(',')) {
    const [range = '', ...parameters] = entry.split(';').map((part) => part.trim().toLowerCase());
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : -1;
    if (specificity <= best.specificity) continue;
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    best = { specificity, q: q === undefined ? 1 : Number(q.slice(2)) || 0 };
  }
  return best.q;
}

/**
 * A browser opening /graphql: a GET that asks for no operation and prefers HTML to GraphQL's JSON.
 * Clients' GET queries carry `query`, and they accept JSON at least as much as HTML.
 */
function isBrowserVisit(request: FastifyRequest): boolean {
  if (request.method !== 'GET' || request.url.split('?')[0] !== '/graphql') return false;
  if ((request.query as Record<string, unknown>).query !== undefined) return false;
  const accept = request.headers.accept ?? '';
  const html = weightOf(accept, 'text/html');
  return html > 0 && html > Math.max(weightOf(accept, 'application/json'), weightOf(accept, 'application/graphql-response+json'));
}

export async function registerPlaygroundRoutes(app: FastifyInstance): Promise<void> {
  // Where people land who try the service's address or its GraphQL URL in a browser: Apollo would
  // answer the latter with a CSRF refusal, as it must for GETs without a query.
  app.get('/', (_request, reply) => reply.redirect('/playground'));
  // A callback hook: it sees every request, agents' included, and most go on at once.
  app.addHook('onRequest', (request, reply, done) => {
    // An answer sent from a callback hook ends the request there, without done().
    if (isBrowserVisit(request)) reply.redirect('/playground');
    else done();
  });

  const urls = await serveAssets(app, '/playground/assets', {
    'react.js': packageAsset('react', 'umd/react.production.min.js'),
    'react-dom.js': packageAsset('react-dom', 'umd/react-dom.production.min.js'),
    'graphiql.js': packageAsset('graphiql', 'graphiql.min.js'),
    'graphiql.css': packageAsset('graphiql', 'graphiql.min.css'),
    'graphql-ws.js': packageAsset('graphql-ws', 'umd/graphql-ws.min.js'),
    'playground.js': assetOf('playground.js', PLAYGROUND_SCRIPT),
  });
  const page = assetOf(
    'playground.html',
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Render orchestrator GraphQL playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${urls['graphiql.css']}">
<style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<script src="${urls['react.js']}"></script>
<script src="${urls['react-dom.js']}"></script>
<script src="${urls['graphiql.js']}"></script>
<script src="${urls['graphql-ws.js']}"></script>
<script src="${urls['playground.js']}"></script>
</body>
</html>
`,
  );
  app.get('/playground', (request, reply) =>
    sendAsset(request, reply.header('content-security-policy', ADMIN_PAGE_POLICY), page, 'no-cache'),
  );
}
