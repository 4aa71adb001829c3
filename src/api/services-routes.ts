// PUT/GET/DELETE /v1/services/{service}.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NameSchema, ServiceSchema } from '../model/service.js';
import type { NamedService } from '../model/service.js';
import { NotFoundError } from '../state/errors.js';
import type { StateWriter } from '../state/writer.js';
import { actor } from './actor.js';
import { SERVICE_EXAMPLE } from './examples.js';
import { empty, errors, json } from './route-docs.js';
import { ServiceViewSchema } from './schemas.js';

/** The `{service}` of every per-service route (a 400 names `path.service`). */
export const ServiceParams = z.strictObject({ service: NameSchema });

/** Why a declared service is not served as declared (from the reconciler), if it is not. */
export type PublishProblems = () => ReadonlyMap<string, string>;

const tags = ['services'];
const viewExample = { name: 'echo', ...SERVICE_EXAMPLE, status: { published: true } };

export function serviceRoutes(writer: StateWriter, problems: PublishProblems) {
  // The declaration as stored, plus whether it is published as declared.
  const view = (s: NamedService) => {
    const problem = problems().get(s.name);
    return { ...s, status: problem ? { published: false, problem } : { published: true } };
  };
  return (plain: FastifyInstance) => {
    const app = plain.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/v1/services',
      {
        schema: {
          operationId: 'listServices',
          summary: 'Every declared service, by name',
          tags,
          response: { 200: json('the services', z.object({ services: z.array(ServiceViewSchema) }), { services: [viewExample] }) },
        },
      },
      async () => ({ services: [...writer.state.services.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(view) }),
    );
    app.get(
      '/v1/services/:service',
      {
        schema: {
          operationId: 'getService',
          summary: 'One service: its declaration and whether it is published as declared',
          tags,
          params: ServiceParams,
          response: { 200: json('the service', ServiceViewSchema, viewExample), ...errors(404) },
        },
      },
      async (req) => {
        const found = writer.state.services.get(req.params.service);
        if (!found) throw new NotFoundError(`service "${req.params.service}" not found`);
        return view(found);
      },
    );
    app.put(
      '/v1/services/:service',
      {
        schema: {
          operationId: 'putService',
          summary: 'Declare a service or replace its declaration',
          description:
            'Checked against the whole resulting configuration first: a cluster name or domain belongs to one service and version (409 names the owner). Removing a version a rollout uses is refused (409).',
          tags,
          params: ServiceParams,
          body: ServiceSchema,
          bodyExample: SERVICE_EXAMPLE,
          response: {
            200: json('replaced: the declaration as stored', ServiceSchema.safeExtend({ name: NameSchema }), { name: 'echo', ...SERVICE_EXAMPLE }),
            201: json('created: the declaration as stored', ServiceSchema.safeExtend({ name: NameSchema }), { name: 'echo', ...SERVICE_EXAMPLE }),
            ...errors(409, 503),
          },
        },
      },
      async (req, reply) => {
        const { service: stored, created } = await writer.putService(req.params.service, req.body, actor(req));
        return reply.status(created ? 201 : 200).send(stored);
      },
    );
    app.delete(
      '/v1/services/:service',
      {
        schema: {
          operationId: 'deleteService',
          summary: 'Delete a service (not while it has an active rollout)',
          tags,
          params: ServiceParams,
          response: { 204: empty('deleted'), ...errors(404, 409, 503) },
        },
      },
      async (req, reply) => {
        await writer.deleteService(req.params.service, actor(req));
        return reply.status(204).send();
      },
    );
  };
}
