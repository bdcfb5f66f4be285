# The render orchestrator, compiled: a build stage with the development dependencies turns the
# TypeScript into JavaScript (`npm run build`); the image runs that with node alone, on the
# production dependencies, as one process that receives the container's signals itself.

FROM node:20-slim AS build

WORKDIR /app

# Dependencies first, so that editing the sources does not reinstall them. Install scripts stay
# off: nothing in this stack needs them, and they would fetch engine binaries the service never
# uses. `prisma generate` is then run on its own; the package script points
# PRISMA_SCHEMA_ENGINE_BINARY at node itself because generate only needs the variable to name an
# existing file, never the engine.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --ignore-scripts && npm run generate:prisma

COPY . .
RUN npm run build


FROM node:20-slim

WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# The generated Prisma client is compiled into dist/ with the sources; the REST contract and the
# migrations, which the service reads at run time, are copied beside them.
COPY --from=build /app/dist ./dist

# The embedded stores write under DATA_DIR when no DATABASE_URL or S3 endpoint is given, so the
# unprivileged user needs it writable.
RUN mkdir -p /app/.data && chown node:node /app/.data

ENV NODE_ENV=production \
  PORT=4000 \
  DATA_DIR=/app/.data
USER node
EXPOSE 4000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# A young generation of 64 MiB semi-spaces (16 by default): a listing of a page of jobs builds
# megabytes of short-lived objects, which the default size copied into the old generation half
# way through; BENCHMARKS.md (queries) measures what it moves. It costs about 100 MiB of RSS.
CMD ["node", "--max-semi-space-size=64", "dist/src/main.js"]
