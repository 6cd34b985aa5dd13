# syntax=docker/dockerfile:1
# llm-proxy image: build with dev dependencies, ship only the release (dist/, production
# node_modules, the JSON Schema) on node:24-slim, run as the unprivileged `node` user with node as
# PID 1, so SIGHUP and SIGTERM reach the primary. scripts/container-steps.sh runs the same steps
# without a Docker engine, and CI runs that script.

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schema ./schema
COPY scripts/build-release.sh scripts/chmod-bin.mjs scripts/healthcheck.mjs ./scripts/
RUN sh scripts/build-release.sh /release

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /release /app
# Unprivileged, and still able to bind 443: Docker (20.10 and later) starts every container with
# net.ipv4.ip_unprivileged_port_start=0 in its network namespace. Elsewhere (Kubernetes, older
# engines) pass --sysctl net.ipv4.ip_unprivileged_port_start=0, or listen on 8443 (see docs/operations.md, Docker).
USER node
EXPOSE 443
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
# node itself is PID 1 (no npm, no shell): the primary gets the signals and drains the workers.
ENTRYPOINT ["node", "--enable-source-maps", "/app/dist/cli.js"]
CMD ["start", "-c", "/config.yml", "--enable-health-check"]
