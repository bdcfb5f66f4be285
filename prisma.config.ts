import { defineConfig } from 'prisma/config';

// The service applies migrations itself (src/adapters/db/migrator.ts); the CLI is used only for
// `prisma generate`, which needs no database.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
