// The soak's own servers: a PostgreSQL cluster and a Redis server that only it uses (it restarts
// them), an S3 server, and the replicas of the service as production runs them (the compiled
// build, NODE_ENV=production), each restartable on its port.
import { type ServiceProcess, s3Environment, startService, withClient } from '../../bench/lib/service.ts';
import { type PrivatePostgres, type PrivateRedis, startPrivatePostgres, startPrivateRedis } from '../../test/support/private-servers.ts';
import { type S3rverHandle, startS3rver } from '../../test/support/s3rver.ts';

export interface Cluster {
  postgres: PrivatePostgres;
  redis: PrivateRedis;
  replicas: ServiceProcess[];
  ports: number[];
  urls: string[];
  databaseUrl: string;
  /** SIGKILL, as a crash or an OOM kill does. */
  killReplica(index: number): Promise<void>;
  /** Starts the replica again on its port; resolves once it is ready. */
  startReplica(index: number): Promise<void>;
  /** The replicas that should be running and are not: they exited without the soak killing them. */
  exited(): number[];
  /** Resident set sizes of the running replicas, in bytes (undefined while one is down). */
  rss(): Array<number | undefined>;
  close(): Promise<void>;
}

/** Whether the process still runs: Node reaps its children as they exit, so a signal 0 finds none. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startCluster({ replicas }: { replicas: number }): Promise<Cluster> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
  };
  try {
    const postgres = await startPrivatePostgres();
    closers.push(() => postgres.close());
    await withClient(postgres.url, (client) => client.query('CREATE DATABASE orchestrator'));
    const databaseUrl = postgres.url.replace(/\/postgres$/, '/orchestrator');
    const redis = await startPrivateRedis();
    closers.push(() => redis.close());
    const s3: S3rverHandle = await startS3rver();
    closers.push(() => s3.stop());

    const running: Array<ServiceProcess | undefined> = [];
    closers.push(async () => {
      await Promise.all(running.map((replica) => replica?.stop()));
    });
    const start = (port?: number) =>
      startService({
        databaseUrl,
        redisUrl: redis.url,
        ...(port === undefined ? {} : { port }),
        env: {
          // The agents' namespaces reach the replicas over their links to the host.
          HOST: '0.0.0.0',
          ...s3Environment(s3.config),
          LOG_LEVEL: 'error',
          LOG_FORMAT: 'json',
        },
      });
    // One at a time: the first applies the migrations.
    for (let index = 0; index < replicas; index++) running.push(await start());
    const ports = running.map((replica) => Number(new URL((replica as ServiceProcess).url).port));
    return {
      postgres,
      redis,
      get replicas() {
        return running.filter((replica): replica is ServiceProcess => replica !== undefined);
      },
      ports,
      urls: ports.map((port) => `http://127.0.0.1:${port}`),
      databaseUrl,
      async killReplica(index) {
        const replica = running[index];
        running[index] = undefined;
        await replica?.kill();
      },
      async startReplica(index) {
        running[index] ??= await start(ports[index]);
      },
      exited: () => running.flatMap((replica, index) => (replica !== undefined && !alive(replica.pid) ? [index] : [])),
      rss: () =>
        running.map((replica) => {
          try {
            return replica?.rss();
          } catch {
            return undefined;
          }
        }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

