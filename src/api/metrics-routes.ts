// GET /metrics: Sluice's own metrics in the Prometheus text format (src/telemetry/self-metrics.ts).
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { metricsDoc } from './operations-docs.js';

export function metricsRoutes(registry: Registry) {
  return (app: FastifyInstance) => {
    app.get('/metrics', { schema: metricsDoc }, async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  };
}
