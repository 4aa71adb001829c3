// GET /v1/fleet: every connected xDS node and what it holds, on every replica (each node says
// which replica it is connected to); paged on request (fleet-list.ts).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ReplicatedFleet } from '../replica/fleet.js';
import { fleetListDoc, fleetPage } from './fleet-list.js';

export function fleetRoutes(fleet: Pick<ReplicatedFleet, 'nodes'>) {
  return (app: FastifyInstance) => {
    app.withTypeProvider<ZodTypeProvider>().get('/v1/fleet', { schema: fleetListDoc }, async (req) => {
      const { nodes, replicas } = fleet.nodes();
      return { ...fleetPage(nodes, req.query), replicas };
    });
  };
}
