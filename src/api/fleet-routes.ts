// GET /v1/fleet: every connected xDS node and what it holds (paged on request: fleet-list.ts).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { XdsServer } from '../xds/server.js';
import { fleetListDoc, fleetPage } from './fleet-list.js';

export function fleetRoutes(xds: XdsServer) {
  return (app: FastifyInstance) => {
    app.withTypeProvider<ZodTypeProvider>().get('/v1/fleet', { schema: fleetListDoc }, async (req) => fleetPage(xds.fleet(), req.query));
  };
}
