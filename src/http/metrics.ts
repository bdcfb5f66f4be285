// Prometheus metrics at /metrics. Each app has its own registry, not prom-client's global one:
// tests run several apps in one process, and each must scrape only its own series.
import type { ApolloServerPlugin } from '@apollo/server';
import type { FastifyInstance } from 'fastify';
import type { PoolStats } from '../adapters/db/database.ts';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TERMINAL_STEPS } from '../domain/jobs/state-machine.ts';
import { JobStep, NodeStatus } from '../generated/prisma/enums.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import type { Services } from '../services.ts';

export const HTTP_BUCKETS_SECONDS = [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Operation names come from clients: past this many, new ones share one series. */
const MAX_OPERATION_NAMES = 200;

const QUEUE_STEPS = Object.values(JobStep).filter((step) => !TERMINAL_STEPS.includes(step));

/** What the metrics need of a graphql-ws connection. */
export interface GraphQLWsConnection {
  readonly acknowledged: boolean;
  /** Subscriptions streaming now. */
  readonly streaming: number;
}

/** Where a request came in, as refusals are counted. */
export type Door = 'rest' | 'graphql' | 'graphql_ws';

export interface Metrics {
  registry: Registry;
  /** Frames that node agents reported rendered. */
  framesReported: Counter;
  /** Events that could not be published (the bus was away) after their change was saved. */
  eventsNotPublished: Counter;
  /** How long one pass of the scheduler took, in seconds. */
  schedulerPassSeconds: Histogram;
  /** Nodes the heartbeat sweep declared Offline (their work was taken back). */
  nodesLost: Counter;
  /** Requests refused by a limit (rate, body size, GraphQL depth, cost, page size, introspection), by door. */
  refusals: Counter<'reason' | 'door'>;
  /** Rate limit counts that failed (Redis away or slow); those requests were let through. */
  rateLimitCounterErrors: Counter;
  /** Times every GraphQL operation served over HTTP. */
  apolloPlugin: ApolloServerPlugin<GraphQLContext>;
  graphqlWs: {
    /** When connection_init arrives, before anything is awaited: closed can then never come first. */
    connecting(connection: GraphQLWsConnection): void;
    /** Once a socket has closed, its connection accepted or not. */
    closed(connection: GraphQLWsConnection): void;
  };
}

/** Adds the HTTP timing hook and GET /metrics; the returned metrics are for the rest of the app. */
/** Accepted frame reports are the fleet's output: frames per second is their rate. */
const FRAME_REPORT_ROUTE = '/v1/internal/render/jobs/:job_id/frames';

export function registerMetrics(app: FastifyInstance, services: Services): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'],
    // Fine below 100 ms, where agent requests are answered and where their targets lie (a p99 of
    // 20 or 50 ms must fall on a bucket edge to be told apart), coarse above it.
    buckets: HTTP_BUCKETS_SECONDS,
    registers,
  });
  // A callback hook, not an async one: it runs for every request.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (route === FRAME_REPORT_ROUTE && reply.statusCode === 204) metrics.framesReported.inc();
    done();
  });

  const graphqlDuration = new Histogram({
    name: 'graphql_operation_duration_seconds',
    help: 'GraphQL operations over HTTP by operation name and type (unknown when the document is invalid)',
    labelNames: ['operation_name', 'operation_type'],
    registers,
  });
  const operationNames = new Set<string>();
  const nameLabel = (name: string): string => {
    if (operationNames.has(name)) return name;
    if (operationNames.size >= MAX_OPERATION_NAMES) return 'other';
    operationNames.add(name);
    return name;
  };
  const apolloPlugin: ApolloServerPlugin<GraphQLContext> = {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ operation, operationName }) {
          graphqlDuration.observe(
            {
              operation_name: operation ? nameLabel(operationName ?? 'anonymous') : 'unknown',
              operation_type: operation?.operation ?? 'unknown',
            },
            (performance.now() - started) / 1000,
          );
        },
      };
    },
  };

  // Counted from the live connections at each scrape, so no missed event can skew them.
  const wsConnections = new Set<GraphQLWsConnection>();
  new Gauge({
    name: 'graphql_ws_connections',
    help: 'Open graphql-ws connections whose connection_init was accepted',
    registers,
    collect() {
      this.set([...wsConnections].filter((connection) => connection.acknowledged).length);
    },
  });
  new Gauge({
    name: 'graphql_ws_subscriptions',
    help: 'Subscriptions streaming over graphql-ws',
    registers,
    collect() {
      let streaming = 0;
      for (const connection of wsConnections) streaming += connection.streaming;
      this.set(streaming);
    },
  });

  // A database that does not answer costs these series only, not the whole scrape: the process
  // and HTTP series matter most exactly then.
  const fromDatabase = async (gauge: Gauge, what: string, collect: () => Promise<void>) => {
    try {
      await collect();
    } catch (error) {
      gauge.reset();
      app.log.warn({ err: error }, `Metrics: could not count ${what}`);
    }
  };
  new Gauge({
    name: 'render_nodes',
    help: 'Render nodes by status',
    labelNames: ['status'],
    registers,
    async collect() {
      await fromDatabase(this, 'render nodes', async () => {
        const groups = await services.db.prisma.renderNode.groupBy({ by: ['status'], _count: { _all: true } });
        for (const status of Object.values(NodeStatus)) this.set({ status }, 0);
        for (const group of groups) this.set({ status: group.status }, group._count._all);
      });
    },
  });
  new Gauge({
    name: 'render_job_queue_depth',
    help: 'Render jobs not yet finished, by step',
    labelNames: ['step'],
    registers,
    async collect() {
      await fromDatabase(this, 'queued render jobs', async () => {
        const groups = await services.db.prisma.renderJob.groupBy({
          by: ['step'],
          where: { step: { in: QUEUE_STEPS } },
          _count: { _all: true },
        });
        for (const step of QUEUE_STEPS) this.set({ step }, 0);
        for (const group of groups) this.set({ step: group.step }, group._count._all);
      });
    },
  });

  // PGlite is one in-process connection: it has no pool to report.
  if (services.db.poolStats()) {
    const poolGauge = (name: string, help: string, read: (stats: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const stats = services.db.poolStats();
          if (stats) this.set(read(stats));
        },
      });
    poolGauge('db_pool_connections', "Open connections of the PostgreSQL pools (Prisma's and the agents' hot statements')", (stats) => stats.total);
    poolGauge('db_pool_idle_connections', 'Idle connections of the PostgreSQL pools', (stats) => stats.idle);
    poolGauge('db_pool_waiting_clients', 'Queries waiting for a connection of the PostgreSQL pools', (stats) => stats.waiting);
  }

  const metrics: Metrics = {
    registry,
    framesReported: new Counter({
      name: 'render_frames_reported_total',
      help: 'Frames that node agents reported rendered',
      registers,
    }),
    eventsNotPublished: new Counter({
      name: 'events_publish_failures_total',
      help: 'Events that could not be published on the event bus after their change was saved',
      registers,
    }),
    schedulerPassSeconds: new Histogram({
      name: 'render_scheduler_pass_duration_seconds',
      help: 'Duration of one scheduler pass',
      registers,
    }),
    nodesLost: new Counter({
      name: 'render_nodes_lost_total',
      help: 'Nodes declared Offline for missing their heartbeats; their work was given to other nodes',
      registers,
    }),
    refusals: new Counter({
      name: 'http_requests_refused_total',
      help: 'Requests refused by a limit, by reason (rate_limited, payload_too_large, query_too_deep, ...) and door (rest, graphql, graphql_ws)',
      labelNames: ['reason', 'door'],
      registers,
    }),
    rateLimitCounterErrors: new Counter({
      name: 'rate_limit_counter_errors_total',
      help: 'Rate limit counts that failed (Redis away or slow); the requests were served',
      registers,
    }),
    apolloPlugin,
    graphqlWs: {
      connecting: (connection) => void wsConnections.add(connection),
      closed: (connection) => void wsConnections.delete(connection),
    },
  };

  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(await registry.metrics()),
  );
  return metrics;
}
