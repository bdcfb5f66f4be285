import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 has no "exports" map: Node (and so Apollo and the server in production) loads its
    // CommonJS build, while Vite would pick the ESM one for project files. Two copies break
    // `instanceof GraphQLError`, so tests load the one Node loads.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Each test file gets its own database cloned from a migrated template, so files run in
    // parallel without sharing rows.
    pool: 'forks',
    // Most files wait on PostgreSQL, Redis and child processes more than they compute. Vitest's
    // default of one worker per core but one leaves a 2-core machine a single worker; two finish
    // the suite in about 70 % of the time there.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
