// OpenTelemetry tracing, on when OTEL_EXPORTER_OTLP_ENDPOINT is set. Without it not one module of
// the SDK is loaded, so an ordinary start pays nothing.
//
// The instrumentations patch modules as they are loaded, so the SDK must start before the
// application's modules load. In ESM the whole static import graph is loaded before any of it
// runs, and while this module awaits, its sibling imports would run: so main.ts awaits this
// module and only then imports the application, dynamically. No ESM loader hook
// (import-in-the-middle) is needed: pg, graphql and fastify are CommonJS packages, which Node
// loads with its CommonJS loader even when ESM imports them, and that loader is hooked already.
// Measured: HTTP server, Fastify, GraphQL and pg spans all arrive without one; with the
// application imported statically only Fastify's own spans do.
import type { NodeSDK } from '@opentelemetry/sdk-node';
import { ConfigError } from './config.ts';

// Probes and scrapes arrive every few seconds and would bury the requests worth tracing.
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

async function startTracing(): Promise<NodeSDK> {
  const [{ NodeSDK }, { HttpInstrumentation }, { FastifyOtelInstrumentation }, { PgInstrumentation }, { GraphQLInstrumentation }] =
    await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/instrumentation-http'),
      import('@fastify/otel'),
      import('@opentelemetry/instrumentation-pg'),
      import('@opentelemetry/instrumentation-graphql'),
    ]);
  const named =
    Boolean(process.env.OTEL_SERVICE_NAME) || /(^|,)\s*service\.name\s*=/.test(process.env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  const sdk = new NodeSDK({
    // The exporter comes from the standard variables: OTLP over HTTP, protobuf unless
    // OTEL_EXPORTER_OTLP_PROTOCOL says otherwise. The name option would override OTEL_SERVICE_NAME,
    // so it is given only when the variables name no service.
    ...(named ? {} : { serviceName: 'render-orchestrator' }),
    // Traces only: metrics are Prometheus' job (/metrics) and logs go to stdout.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
        // The background loops call S3 on their own; only calls made for a request are traced.
        requireParentforOutgoingSpans: true,
      }),
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        ignorePaths: ({ url }) => UNTRACED_PATHS.has(url),
        // One span per hook of every plugin buries the handler's; the request span names the route.
        instrumentHooks: false,
      }),
      // Likewise the loops' queries, which run every second.
      new PgInstrumentation({ requireParentSpan: true }),
      new GraphQLInstrumentation({ mergeItems: true, ignoreTrivialResolveSpans: true }),
    ],
  });
  sdk.start();
  return sdk;
}

const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
// The exporter would drop every span without a word, so a bad value stops the start as the other
// variables' do (main.ts).
if (endpoint && !(/^https?:\/\//i.test(endpoint) && URL.canParse(endpoint))) {
  process.stderr.write(`${new ConfigError(['OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL']).message}\n`);
  process.exit(2);
}
const sdk = endpoint ? await startTracing() : undefined;

/** Exports the spans still buffered; the process calls it before it exits. */
export async function shutdownTelemetry(): Promise<void> {
  await sdk?.shutdown();
}
