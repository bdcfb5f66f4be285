// npm run build: the service compiled to JavaScript in dist/, which production runs with
// `node dist/src/main.js` (the Docker image, the benchmarks) and `node dist/scripts/migrate.js`.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const rootDir = fileURLToPath(new URL('..', import.meta.url));
const distDir = join(rootDir, 'dist');

// Files the code reads at run time relative to its own module (rest-compat/contract.ts,
// migrator.ts): dist/ mirrors the repository, so each goes to the same place under it.
const ASSETS = ['rest-compat/openapi.yaml', 'prisma/migrations'];

// From scratch, so that the module of a deleted source cannot linger in the build.
rmSync(distDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(rootDir, 'tsconfig.build.json')], { stdio: 'inherit' });
// The console goes where http/console.ts looks from dist/, built there rather than copied: the
// copy under console/ may be serving running tests while this builds.
execFileSync(process.execPath, ['--import', 'tsx', join(rootDir, 'scripts/build-console.ts'), join(distDir, 'console/dist')], { stdio: 'inherit' });
for (const asset of ASSETS) cpSync(join(rootDir, asset), join(distDir, asset), { recursive: true });
