import type { TestProject } from 'vitest/node';
import { prepareTemplateDatabase } from './database.ts';
import { startS3rver } from './s3rver.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
    adminDatabaseUrl: string;
    s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const database = await prepareTemplateDatabase();
  const s3 = await startS3rver();
  project.provide('templateDatabase', database.templateName);
  project.provide('adminDatabaseUrl', database.adminUrl);
  project.provide('s3', s3.config);
  project.provide('redisUrl', process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  return async () => {
    await s3.stop();
    await database.dropTemplate();
  };
}
