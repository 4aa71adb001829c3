// PUT/GET/DELETE /v1/services/{service}.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServiceRegistry } from '../control/services.js';
import { NotFoundError } from '../control/services.js';
import { NameSchema, ServiceSchema } from '../model/service.js';
import { validationError } from './errors.js';

const Params = z.strictObject({ service: NameSchema });

export function parseParams(params: unknown): { service: string } {
  const p = Params.safeParse(params);
  if (!p.success) throw validationError(p.error, ['path']);
  return p.data;
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
      const body = ServiceSchema.safeParse(req.body);
      if (!body.success) throw validationError(body.error);
      const { service: stored, created } = await registry.put(service, body.data);
      return reply.status(created ? 201 : 200).send(stored);
    });
    app.delete('/v1/services/:service', async (req, reply) => {
      const { service } = parseParams(req.params);
      await registry.delete(service);
      return reply.status(204).send();
    });
  };
}
