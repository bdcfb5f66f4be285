// npm run build:console [-- <folder>]: the operator console (console/) built by Vite into
// console/dist, which the service serves at /console, or into another folder (`npm run build`
// gives dist/console/dist, leaving the one that running tests serve alone). Runs on install and
// before the tests.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const config = fileURLToPath(new URL('../console/vite.config.ts', import.meta.url));

// Vite is a development dependency: an install without it (production) is served a build made
// where it was installed, as the Docker image does, so there is nothing to build here.
try {
  createRequire(import.meta.url).resolve('vite');
} catch {
  process.stdout.write('build:console: Vite is not installed (a production install); the console is not built here.\n');
  process.exit(0);
}
const { build } = await import('vite');
const outDir = process.argv[2];
await build({ configFile: config, ...(outDir ? { build: { outDir: resolve(outDir) } } : {}) });
