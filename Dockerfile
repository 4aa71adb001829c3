# Sluice's image. Runs the control plane by default (`serve`); the docker-compose demo also
# runs its HTTP backends (`demo-backend`) and load generator (`loadgen`) from it, so the
# demo needs one build.

# Build: compile TypeScript to dist/ with the dev dependencies (tsc).
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build

# Run: production dependencies, the compiled code, and the Envoy protos it loads at start.
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist dist
COPY bin bin
COPY protos protos
# The embedded store's files. Mount a volume here to keep services and rollouts across
# container restarts (docker-compose.yml does).
ENV SLUICE_DATA_DIR=/var/lib/sluice
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
# REST API and dashboard; xDS (gRPC).
EXPOSE 8080 18000
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["serve", "--host", "0.0.0.0"]
