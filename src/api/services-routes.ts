// PUT/GET/DELETE /v1/services/{service}.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServiceRegistry } from '../control/services.js';
import { NotFoundError } from '../control/services.js';
import { NameSchema, ServiceSchema } from '../model/service.js';
import { parseOr400 } from './errors.js';

const Params = z.strictObject({ service: NameSchema });

export function parseParams(params: unknown): { service: string } {
  return parseOr400(Params, params, ['path']);
}

export function serviceRoutes(registry: ServiceRegistry) {
  return (app: FastifyInstance) => {
    app.get('/v1/services', async () => ({ services: registry.list() }));
    app.get('/v1/services/:service', async (req) => {
      const { service } = parseParams(req.params);
      const found = registry.get(service);
      if (!found) throw new NotFoundError(`service "${service}" not found`);
      return found;
    });
    app.put('/v1/services/:service', async (req, reply) => {
      const { service } = parseParams(req.params);
      const { service: stored, created } = await registry.put(service, parseOr400(ServiceSchema, req.body));
      return reply.status(created ? 201 : 200).send(stored);
    });
    app.delete('/v1/services/:service', async (req, reply) => {
      const { service } = parseParams(req.params);
      await registry.delete(service);
      return reply.status(204).send();
    });
  };
}
