// The operator console: a React app that the service serves, built into console/dist.
// `npm run console:dev` serves it with hot reload and sends the API calls to a service on
// CONSOLE_API (default http://127.0.0.1:4000), WebSockets included.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const api = process.env.CONSOLE_API ?? 'http://127.0.0.1:4000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  // Everything the page needs is in the bundle: the console must work where the service has no
  // internet, and its page may load scripts from its own origin only.
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { '/graphql': { target: api, ws: true } },
  },
  logLevel: 'warn',
});
