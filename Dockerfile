# syntax=docker/dockerfile:1
# dpu-ztp in one image. Stages:
#   build    TypeScript compiled with the dev dependencies, then pruned to production ones
#   base     node:20-bookworm-slim + dist/ + production node_modules, unprivileged `node` user
#   dhcp     base + node-dhcp, a node binary allowed to bind ports 67/547 (compose service ztp-dhcp)
#   runtime  the default target: `ztp serve` (every service but DHCP, which needs the lab segment)
# test/unit/compose.test.ts checks this file against the repository (COPY sources, CMD, HEALTHCHECK).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 fetches a prebuilt binary; the toolchain builds it where none matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied below so that this layer is
# reused while only sources change; better-sqlite3 is the one dependency with an install script.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS base
ENV NODE_ENV=production \
    ZTP_DATA_DIR=/var/lib/dpu-ztp
WORKDIR /app
# The data volume's mount point belongs to `node`: a named volume starts with this ownership.
RUN mkdir -p /var/lib/dpu-ztp && chown node:node /var/lib/dpu-ztp
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root bin ./bin
# The suite's ports (defaults; see README "Configuration"): bootstrap HTTPS, admin API, images.
EXPOSE 8443 8081 8080 8444
USER node
VOLUME ["/var/lib/dpu-ztp"]
# No curl in the slim image: node's fetch probes the admin API's liveness route.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ZTP_API_PORT||8081)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM stops the suite gracefully (ztp serve); node runs as PID 1 without a shell in between.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/ztp.js"]
CMD ["serve"]

# DHCP answers on ports 67 (v4) and 547 (v6), below 1024. Rather than running as root, which
# would then own files in the shared data volume the `node` user must write, a copy of node gets
# the one file capability CAP_NET_BIND_SERVICE; the process still runs as `node`. A copy, because
# a capability on /usr/local/bin/node itself would fail every exec where the container drops it.
FROM base AS dhcp
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && cp /usr/local/bin/node /usr/local/bin/node-dhcp \
 && setcap cap_net_bind_service=+ep /usr/local/bin/node-dhcp \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
USER node
ENTRYPOINT ["node-dhcp", "bin/ztp.js"]
CMD ["serve"]

FROM base AS runtime
