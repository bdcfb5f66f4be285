import type { TestProject } from 'vitest/node';
import { prepareTemplateDatabase } from './database.ts';
import { startS3rver } from './s3rver.ts';
import { ensureTestServers, TestServersUnavailable } from './servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
    /** A superuser's URL of the PostgreSQL server the tests use: the configured one or a private one. */
    adminDatabaseUrl: string;
    s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
    /** The Redis the tests use: the configured one or a private one. */
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  // Latest first, so that the template is dropped before its server stops.
  const teardown: Array<() => Promise<void>> = [];
  const tearDown = async () => {
    for (const step of teardown) await step();
  };
  try {
    const servers = await ensureTestServers();
    teardown.unshift(servers.stop);
    for (const note of servers.notes) process.stdout.write(`${note}\n`);
    const database = await prepareTemplateDatabase(servers.databaseUrl);
    teardown.unshift(database.dropTemplate);
    const s3 = await startS3rver();
    teardown.unshift(s3.stop);
    project.provide('templateDatabase', database.templateName);
    project.provide('adminDatabaseUrl', servers.databaseUrl);
    project.provide('s3', s3.config);
    project.provide('redisUrl', servers.redisUrl);
  } catch (error) {
    await tearDown();
    if (error instanceof TestServersUnavailable) {
      // Thrown on, it would come after "No test files found" and a stack trace; this says it all.
      process.stderr.write(`\n${error.message}\n\n`);
      process.exit(1);
    }
    throw error;
  }
  return tearDown;
}
