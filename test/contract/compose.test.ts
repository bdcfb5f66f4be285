import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.ts';

// docker-compose.yml cannot be run here (no Docker engine), so these checks read it the way
// compose would and hold it to the service's own configuration rules.

type Json = Record<string, unknown>;

const root = new URL('../../', import.meta.url);
// `merge`: the replicas share one definition through YAML merge keys (`<<`), as compose reads them.
const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8'), { merge: true }) as {
  services: Record<string, Json>;
  volumes?: Record<string, unknown>;
};
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');

const PRODUCTION_REQUIRED = [
  'DATABASE_URL',
  'S3_ENDPOINT',
  'S3_BUCKET',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
  'JWT_SECRET',
  'NODE_HMAC_SECRET',
  'SERVICE_TOKENS',
  'PUBLIC_BASE_URL',
];

const SUBSTITUTION = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g;

/** A value that satisfies every rule loadConfig applies to secrets (32+ characters, URL-safe). */
function sampleValue(name: string): string {
  return `sample-${name.toLowerCase()}-`.padEnd(48, '0');
}

/** Compose's interpolation, with the variables a user must set replaced by sample values. */
function interpolate(value: string): string {
  return value.replace(SUBSTITUTION, (match, name: string | undefined, operator: string | undefined, rest = '') => {
    if (match === '$$') return '$';
    if (operator === ':-' || operator === '-') return rest;
    return sampleValue(name ?? '');
  });
}

function environmentOf(service: string): Record<string, string> {
  const raw = compose.services[service]?.environment ?? {};
  const entries: [string, string][] = Array.isArray(raw)
    ? raw.map((line: string) => {
        const at = line.indexOf('=');
        return [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(raw as Json).map(([key, value]) => [key, String(value ?? '')]);
  return Object.fromEntries(entries.map(([key, value]) => [key, interpolate(value)]));
}

function rawEnvironmentOf(service: string): Record<string, string> {
  return compose.services[service]?.environment as Record<string, string>;
}

function commandOf(service: string): string {
  const command = compose.services[service]?.command;
  return Array.isArray(command) ? command.join(' ') : String(command ?? '');
}

function publishedPorts(service: string): { published: string; target: string }[] {
  const ports = (compose.services[service]?.ports ?? []) as (string | Json)[];
  return ports.map((port) => {
    if (typeof port === 'object') return { published: String(port.published), target: String(port.target) };
    const parts = String(port).replace(/\/(tcp|udp)$/, '').split(':');
    return { published: parts.at(-2) ?? parts.at(-1)!, target: parts.at(-1)! };
  });
}

const REPLICAS = ['render-orchestrator-1', 'render-orchestrator-2'];
const orchestrator = environmentOf(REPLICAS[0]!);

describe('docker-compose.yml', () => {
  it('defines the backends, two replicas of the service, the gateway and the opt-in router', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['postgres', 'redis', 'minio', 'minio-init', ...REPLICAS, 'gateway', 'router']),
    );
    expect(compose.services.postgres?.image).toMatch(/^postgres:16/);
    expect(compose.services.redis?.image).toMatch(/^redis:7/);
    expect(compose.services.minio?.image).toMatch(/^minio\/minio/);
    expect(compose.services['minio-init']?.image).toMatch(/^minio\/mc/);
    for (const replica of REPLICAS) expect(compose.services[replica]?.build, replica).toBeDefined();
  });

  it('configures every replica alike: environment, image, backends, health, network alias', () => {
    const [first, ...others] = REPLICAS.map((replica) => compose.services[replica]!);
    for (const [index, other] of others.entries()) {
      const name = REPLICAS[index + 1]!;
      expect(environmentOf(name), name).toEqual(orchestrator);
      for (const key of ['build', 'image', 'depends_on', 'healthcheck', 'networks', 'restart']) {
        expect(other[key], `${name}.${key}`).toEqual(first![key]);
      }
    }
    expect(first!.image).toBeDefined();
    // Replicas only differ in the host port they publish for REST.
    const hostPorts = REPLICAS.map((replica) => publishedPorts(replica).map((port) => port.published)).flat();
    expect(new Set(hostPorts).size).toBe(REPLICAS.length);
  });

  it('gives the orchestrator only variables the service reads, and all that production needs', () => {
    const keys = Object.keys(orchestrator);
    expect(keys.filter((key) => !CONFIG_VARIABLES.includes(key))).toEqual([]);
    expect(PRODUCTION_REQUIRED.filter((key) => !keys.includes(key))).toEqual([]);
    expect(orchestrator.NODE_ENV).toBe('production');
    expect(keys).toEqual(expect.arrayContaining(['REDIS_URL', 'S3_REGION', 'LOG_LEVEL']));
  });

  it('leaves no secret with a default', () => {
    const raw = rawEnvironmentOf(REPLICAS[0]!);
    for (const key of ['JWT_SECRET', 'NODE_HMAC_SECRET', 'SERVICE_TOKENS', 'S3_SECRET_ACCESS_KEY']) {
      expect(raw[key], key).toMatch(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/);
    }
    // The raw URL is no URL yet (the message has spaces), so the password is read by pattern.
    expect(raw.DATABASE_URL).toMatch(/^postgres(ql)?:\/\/[^:@/]+:\$\{[A-Z0-9_]+:\?[^}]+\}@/);
    expect(rawEnvironmentOf('postgres').POSTGRES_PASSWORD).toMatch(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/);
    expect(rawEnvironmentOf('minio').MINIO_ROOT_PASSWORD).toMatch(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/);
  });

  it('points DATABASE_URL at the postgres service with its credentials', () => {
    const postgres = environmentOf('postgres');
    const url = new URL(orchestrator.DATABASE_URL ?? '');
    expect(url.protocol).toMatch(/^postgres(ql)?:$/);
    expect(url.hostname).toBe('postgres');
    expect(url.port === '' || url.port === '5432').toBe(true);
    expect(decodeURIComponent(url.username)).toBe(postgres.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(postgres.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${postgres.POSTGRES_DB ?? postgres.POSTGRES_USER}`);
  });

  it('points REDIS_URL at redis and S3 at minio with its credentials', () => {
    const redis = new URL(orchestrator.REDIS_URL ?? '');
    expect(redis.protocol).toBe('redis:');
    expect(redis.hostname).toBe('redis');
    expect(redis.port === '' || redis.port === '6379').toBe(true);

    const minio = environmentOf('minio');
    const s3 = new URL(orchestrator.S3_ENDPOINT ?? '');
    expect(s3.hostname).toBe('minio');
    // MinIO serves S3 on 9000 unless `--address` says otherwise.
    expect(commandOf('minio')).not.toContain('--address');
    expect(s3.port).toBe('9000');
    expect(orchestrator.S3_ACCESS_KEY_ID).toBe(minio.MINIO_ROOT_USER);
    expect(orchestrator.S3_SECRET_ACCESS_KEY).toBe(minio.MINIO_ROOT_PASSWORD);
  });

  it('creates S3_BUCKET in minio-init, once minio is healthy', () => {
    const init = compose.services['minio-init'] as Json;
    expect(init.depends_on).toMatchObject({ minio: { condition: 'service_healthy' } });
    const command = interpolate(commandOf('minio-init'));
    const alias = /mc alias set (\S+) (\S+)/.exec(command);
    expect(alias?.[2]).toBe(orchestrator.S3_ENDPOINT);
    const bucket = new RegExp(`mc mb\\b[^&;|]*\\b${alias?.[1]}/([^\\s"';&|]+)`).exec(command);
    expect(bucket?.[1]).toBe('renders');
    expect(orchestrator.S3_BUCKET).toBe(bucket?.[1]);
    // The credentials the init job logs in with are the ones MinIO was started with.
    expect(environmentOf('minio-init')).toEqual(environmentOf('minio'));
  });

  it('publishes each replica on its own host port, to the port the service listens on and the image exposes', () => {
    const exposed = [...dockerfile.matchAll(/^EXPOSE\s+(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(exposed.map((port) => port.replace(/\/tcp$/, ''))).toEqual(['4000']);
    expect(loadConfig(orchestrator).port).toBe(4000);
    for (const replica of REPLICAS) expect(publishedPorts(replica).map((port) => port.target), replica).toEqual(['4000']);
    expect(REPLICAS.flatMap((replica) => publishedPorts(replica).map((port) => port.published))).not.toContain('4000');
  });

  it("runs the image's compiled service: no replica names a stage or a command of its own (tsx, npm start)", () => {
    for (const replica of REPLICAS) {
      const service = compose.services[replica]!;
      expect(service.build, replica).toBe('.');
      expect(service.command, replica).toBeUndefined();
      expect(service.entrypoint, replica).toBeUndefined();
    }
  });

  it('starts the replicas after their backends are ready', () => {
    for (const replica of REPLICAS) {
      expect(compose.services[replica]?.depends_on, replica).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        'minio-init': { condition: 'service_completed_successfully' },
      });
    }
  });

  it('has healthchecks, the orchestrator one on /readyz', () => {
    for (const service of ['postgres', 'redis', 'minio', ...REPLICAS]) {
      expect((compose.services[service]?.healthcheck as Json | undefined)?.test, service).toBeDefined();
    }
    for (const replica of REPLICAS) {
      const test = (compose.services[replica]?.healthcheck as Json).test as string[];
      expect(test.join(' '), replica).toContain('127.0.0.1:4000/readyz');
    }
  });

  it('keeps data in declared named volumes', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const service of ['postgres', 'redis', 'minio']) {
      const volumes = (compose.services[service]?.volumes ?? []) as string[];
      expect(volumes.length, service).toBeGreaterThan(0);
      for (const volume of volumes) expect(declared).toContain(volume.split(':')[0]);
    }
  });

  it('is accepted by loadConfig, so compose and config cannot drift apart', () => {
    const config = loadConfig(orchestrator);
    expect(config).toMatchObject({
      env: 'production',
      port: 4000,
      databaseUrl: orchestrator.DATABASE_URL,
      redisUrl: 'redis://redis:6379',
      s3: { endpoint: 'http://minio:9000', bucket: 'renders' },
      developmentDefaults: [],
    });
    expect(config.serviceTokens.length).toBeGreaterThan(0);
  });
});

/** The supergraph's subgraphs by name, with their routing URLs. */
function graphsOf(supergraph: string): Record<string, URL> {
  return Object.fromEntries(
    [...supergraph.matchAll(/@join__graph\(name: "([^"]+)", url: "([^"]+)"\)/g)].map((match) => [match[1]!, new URL(match[2]!)]),
  );
}

/** The host file a service mounts at a path inside its container, and whether read-only. */
function mountOf(service: string, target: string): { file: URL; readOnly: boolean } | undefined {
  const volume = ((compose.services[service]?.volumes ?? []) as string[]).find((entry) => entry.split(':')[1] === target);
  return volume ? { file: new URL(volume.split(':')[0]!, root), readOnly: volume.endsWith(':ro') } : undefined;
}

/** The replicas' shared network alias is where a supergraph must route the render subgraph. */
function expectRenderRoutedToReplicas(graphs: Record<string, URL>) {
  expect(Object.keys(graphs).sort()).toEqual(['identity', 'render']);
  const render = graphs.render!;
  const aliases = REPLICAS.map((replica) => (compose.services[replica]?.networks as Json).default as { aliases: string[] });
  for (const alias of aliases) expect(alias.aliases).toContain(render.hostname);
  expect(render.port).toBe(orchestrator.PORT);
  expect(render.pathname).toBe('/graphql');
}

describe('Hive Gateway in docker-compose.yml', () => {
  const gateway = compose.services.gateway as Json & { command: string[] };

  it('runs a pinned Hive Gateway image on the committed configuration file and supergraph, read-only', () => {
    expect(gateway.image).toMatch(/^ghcr\.io\/graphql-hive\/gateway:\d+\.\d+\.\d+$/);
    expect(gateway.profiles).toBeUndefined();
    expect(gateway.command).toEqual(['supergraph']);
    // The image's CLI reads gateway.config.ts from its working directory, /gateway; the config
    // names ./supergraph.graphql unless SUPERGRAPH says otherwise, which compose does not.
    expect(mountOf('gateway', '/gateway/gateway.config.ts')).toEqual({ file: new URL('gateway/gateway.config.ts', root), readOnly: true });
    expect(mountOf('gateway', '/gateway/supergraph.graphql')).toEqual({ file: new URL('router/supergraph.graphql', root), readOnly: true });
    expect(environmentOf('gateway').SUPERGRAPH).toBeUndefined();
  });

  it('has a configuration that imports only types, so the image needs nothing of this repository', () => {
    const source = readFileSync(new URL('gateway/gateway.config.ts', root), 'utf8');
    const imports = source.split('\n').filter((line) => /^import\b/.test(line));
    for (const line of imports) expect(line).toMatch(/^import type /);
    expect(source).toMatch(/^export const gatewayConfig\b/m);
  });

  it('is the endpoint browsers use, on 4000, ready once the replicas are healthy', () => {
    expect(publishedPorts('gateway')).toEqual([{ published: '4000', target: '4000' }]);
    expect(((gateway.healthcheck as Json).test as string[]).join(' ')).toContain('127.0.0.1:4000/readiness');
    expect(gateway.depends_on).toEqual(Object.fromEntries(REPLICAS.map((replica) => [replica, { condition: 'service_healthy' }])));
  });

  it('routes the render subgraph to the replicas: their network alias, port and GraphQL path', () => {
    expectRenderRoutedToReplicas(graphsOf(readFileSync(mountOf('gateway', '/gateway/supergraph.graphql')!.file, 'utf8')));
  });
});

describe('the Apollo Router in docker-compose.yml', () => {
  const router = compose.services.router as Json & { command: string[]; volumes: string[] };
  const option = (name: string) => router.command[router.command.indexOf(name) + 1]!;
  const configFile = mountOf('router', option('--config'));
  const supergraphFile = mountOf('router', option('--supergraph'));
  const config = parse(readFileSync(configFile?.file ?? new URL('router/router.yaml', root), 'utf8')) as Record<string, any>;
  const graphs = graphsOf(readFileSync(supergraphFile?.file ?? new URL('router/supergraph.graphql', root), 'utf8'));

  it('runs only in its profile, a pinned router image with the committed configuration and supergraph mounted read-only', () => {
    expect(router.profiles).toEqual(['apollo-router']);
    expect(router.image).toMatch(/^ghcr\.io\/apollographql\/router:v\d+\.\d+\.\d+$/);
    expect(configFile).toEqual({ file: new URL('router/router.yaml', root), readOnly: true });
    expect(supergraphFile).toEqual({ file: new URL('router/supergraph.graphql', root), readOnly: true });
  });

  it('publishes the supergraph endpoint on the port it listens on, beside the gateway’s, and a health check', () => {
    const [host, port] = String(config.supergraph.listen).split(/:(?=\d+$)/);
    expect(host).toBe('0.0.0.0');
    expect(publishedPorts('router')).toEqual([{ published: '4010', target: port }]);
    expect(config.supergraph.path).toBe('/graphql');
    expect(config.health_check).toMatchObject({ enabled: true, path: '/health' });
    expect(String(config.health_check.listen)).toMatch(/^0\.0\.0\.0:\d+$/);
  });

  it('routes the render subgraph to the replicas: their network alias, port and GraphQL path', () => {
    expectRenderRoutedToReplicas(graphs);
    expect(config.override_subgraph_url?.render).toBeUndefined();
    expect(router.depends_on).toEqual(Object.fromEntries(REPLICAS.map((replica) => [replica, { condition: 'service_healthy' }])));
  });

  it('passes subscriptions through to the subgraph over graphql-ws, on the path the service serves graphql-ws on', () => {
    expect(config.subscription.enabled).toBe(true);
    const passthrough = config.subscription.mode.passthrough;
    const render = { ...passthrough.all, ...passthrough.subgraphs?.render };
    // graphql_ws is the router's name for the graphql-transport-ws protocol of the graphql-ws library.
    expect(render).toMatchObject({ path: graphs.render!.pathname, protocol: 'graphql_ws' });
  });

  it('forwards the Authorization header, allows the frontend origin and keeps the typed errors', () => {
    expect(config.headers.all.request).toContainEqual({ propagate: { named: 'authorization' } });
    const policy = config.cors.policies[0];
    expect(policy.origins.length).toBeGreaterThan(0);
    expect(policy.allow_headers).toEqual(expect.arrayContaining(['authorization', 'content-type']));
    expect(config.cors.allow_any_origin ?? false).toBe(false);
    expect(config.include_subgraph_errors).toEqual({ all: true });
  });

  it('gives the router every variable its configuration expands, the license ones empty unless set', () => {
    const environment = compose.services.router?.environment as Record<string, string>;
    const expanded = [...readFileSync(configFile!.file, 'utf8').matchAll(/\$\{env\.([A-Z0-9_]+)/g)].map((match) => match[1]!);
    for (const name of expanded) expect(Object.keys(environment), name).toContain(name);
    // Compose interpolates every service, profile or not: a required (`:?`) license variable would
    // stop `docker compose up` for everyone without a GraphOS account.
    for (const name of ['APOLLO_KEY', 'APOLLO_GRAPH_REF']) expect(environment[name], name).toBe(`\${${name}:-}`);
  });
});

/** The Dockerfile's stages in order, each from its FROM line to the next. */
const stages = dockerfile.split(/^(?=FROM )/m).filter((stage) => stage.startsWith('FROM '));
const buildStage = stages.find((stage) => /^FROM \S+ AS build$/m.test(stage)) ?? '';
const runtimeStage = stages.at(-1) ?? '';

/** The arguments of an exec-form instruction of a stage (`CMD ["node", "…"]`). */
function execForm(stage: string, instruction: string): string[] | undefined {
  const line = new RegExp(`^${instruction} (\\[.*\\])$`, 'm').exec(stage);
  return line ? (JSON.parse(line[1]!) as string[]) : undefined;
}

/** Where `npm run build` puts the compiled src/main.ts, read from tsconfig.build.json. */
function compiledMain(): string {
  const rootDir = fileURLToPath(root);
  const { config } = ts.readConfigFile(join(rootDir, 'tsconfig.build.json'), ts.sys.readFile);
  const { options, fileNames } = ts.parseJsonConfigFileContent(config, ts.sys, rootDir);
  expect(fileNames).toContain(join(rootDir, 'src/main.ts'));
  return join(relative(rootDir, options.outDir!), relative(options.rootDir!, join(rootDir, 'src/main.ts'))).replace(/\.ts$/, '.js');
}

describe('Dockerfile', () => {
  it('compiles the service in a build stage on node:20-slim, with the development dependencies', () => {
    expect(stages).toHaveLength(2);
    expect(buildStage).toMatch(/^FROM node:20-slim AS build$/m);
    expect(buildStage).toMatch(/^RUN npm ci --ignore-scripts\b(?!.*--omit)/m);
    expect(buildStage).toContain('npm run generate:prisma');
    expect(buildStage).toMatch(/^RUN npm run build$/m);
  });

  it('runs the compiled service with node under NODE_ENV=production as a non-root user, without tsx or development dependencies', () => {
    expect(runtimeStage).toMatch(/^FROM node:20-slim$/m);
    expect(runtimeStage).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtimeStage).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtimeStage).toMatch(/^ENV NODE_ENV=production\b/m);
    expect(runtimeStage).toMatch(/^USER (?!root\b|0\b)\S+/m);
    expect(execForm(runtimeStage, 'ENTRYPOINT')).toBeUndefined();
    expect(execForm(runtimeStage, 'CMD')).toEqual(['node', '--max-semi-space-size=64', compiledMain()]);
    expect(runtimeStage).not.toMatch(/\btsx\b|npm start/);
  });

  it('checks /healthz with node itself, since the slim image has no curl', () => {
    const healthcheck = /^HEALTHCHECK[\s\S]*?CMD (.+)$/m.exec(runtimeStage);
    expect(healthcheck?.[1]).toMatch(/^\["node", "-e", ".*fetch\(.*\/healthz.*"\]$/);
  });
});
