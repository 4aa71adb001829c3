// PUT/GET/DELETE /v1/services/{service}.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NameSchema, ServiceSchema } from '../model/service.js';
import type { NamedService } from '../model/service.js';
import { NotFoundError } from '../state/errors.js';
import type { StateWriter } from '../state/writer.js';
import { parseOr400 } from './errors.js';
import { actor } from './actor.js';

const Params = z.strictObject({ service: NameSchema });

export function parseParams(params: unknown): { service: string } {
  return parseOr400(Params, params, ['path']);
}

/** Why a declared service is not served as declared (from the reconciler), if it is not. */
export type PublishProblems = () => ReadonlyMap<string, string>;

export function serviceRoutes(writer: StateWriter, problems: PublishProblems) {
  // The declaration as stored, plus whether it is published as declared.
  const view = (s: NamedService) => {
    const problem = problems().get(s.name);
    return { ...s, status: problem ? { published: false, problem } : { published: true } };
  };
  return (app: FastifyInstance) => {
    app.get('/v1/services', async () => ({ services: [...writer.state.services.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(view) }));
    app.get('/v1/services/:service', async (req) => {
      const { service } = parseParams(req.params);
      const found = writer.state.services.get(service);
      if (!found) throw new NotFoundError(`service "${service}" not found`);
      return view(found);
    });
    app.put('/v1/services/:service', async (req, reply) => {
      const { service } = parseParams(req.params);
      const { service: stored, created } = await writer.putService(service, parseOr400(ServiceSchema, req.body), actor(req));
      return reply.status(created ? 201 : 200).send(stored);
    });
    app.delete('/v1/services/:service', async (req, reply) => {
      const { service } = parseParams(req.params);
      await writer.deleteService(service, actor(req));
      return reply.status(204).send();
    });
  };
}
