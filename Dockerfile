# syntax=docker/dockerfile:1
# The idmount image: `build` compiles the TypeScript with every dependency installed; the runtime
# stage receives only the compiled code, the production dependencies and the files the service
# reads at run time (the demo directory and the KubeSpawner template). It runs as a numeric
# non-root user and needs no writable path but /tmp, so it works with a read-only root filesystem.
# test/deploy/image.test.ts replays these stages without a Docker engine: keep to WORKDIR, COPY,
# RUN, ENV, USER, EXPOSE and CMD.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency's install script runs in the build. Only two packages have one,
# both devDependencies: `node` (downloads a Node binary for machines without Node 24; the base
# image has it) and esbuild (used by tsx and vitest, not by tsc). A test keeps that true.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
# package.json says "type": "module", which Node needs to load dist/ as ES modules.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Read at run time: the embedded demo config and directory, and the spawner template that
# `render-extra-config` fills in.
COPY examples ./examples
COPY src/spawner/templates ./src/spawner/templates
# 10001: a uid of no real user (NFS homes usually start at 1000); the chart's runAsUser matches.
USER 10001:10001
EXPOSE 8080
# No config: the embedded demo on 127.0.0.1. In Kubernetes the chart sets IDMOUNT_CONFIG.
# The same node flags as `npm start`: --expose-gc lets the cache give a fill burst's memory back
# (src/heap-trim.ts); a 32 MB semi-space with the old generation grown by half of what survives
# keeps a fill burst's peak near 300 MB for 100 000 users while a directory miss spends less
# time in the collector than with a smaller one; without allocation-site pretenuring V8 no longer
# puts objects that live for one request straight into the old generation, where they made
# cached spawns pay for full collections (docs/10-performance.md).
CMD ["node", "--expose-gc", "--max-semi-space-size=32", "--heap-growing-percent=50", "--no-allocation-site-pretenuring", "dist/cli/main.js", "serve"]
