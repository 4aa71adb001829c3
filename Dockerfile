# Sluice's image. Runs the control plane by default (`serve`); the docker-compose demo also
# runs its HTTP backends (`demo-backend`) and load generator (`loadgen`) from it, so the
# demo needs one build.
#
# Node 24 (LTS, supported until April 2028): every dependency's `engines` accepts it, while one
# (cookie, through fastify) already requires Node 22 or later. package.json's `engines` also
# names Node 20.19+, on which the tests run too.

# Build: compile TypeScript to dist/ with the dev dependencies (tsc).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build

# Run: production dependencies (no dev or demo-only packages such as @grpc/grpc-js-xds), the
# compiled code, the Envoy protos it loads at start and the dashboard's vendored files.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist dist
COPY bin bin
COPY protos protos
# The dashboard's chart library (uPlot), served at /assets/.
COPY vendor vendor
# The embedded store's files. Mount a volume here to keep services and rollouts across
# container restarts (docker-compose.yml does).
ENV SLUICE_DATA_DIR=/var/lib/sluice
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
# REST API and dashboard; xDS (gRPC).
EXPOSE 8080 18000
# Exec form, Node itself as PID 1: `docker stop` (SIGTERM) reaches Sluice, which shuts down
# gracefully (serve handles SIGTERM and SIGINT). Never start it through `npx` or `npm run`
# here: npm would be PID 1 and the signal may not reach the server.
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["serve", "--host", "0.0.0.0"]
