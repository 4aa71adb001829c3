// GET /v1/fleet: every connected xDS node and what it holds, on every replica (each node says
// which replica it is connected to).
import type { FastifyInstance } from 'fastify';
import type { ReplicatedFleet } from '../replica/fleet.js';

export function fleetRoutes(fleet: Pick<ReplicatedFleet, 'nodes'>) {
  return (app: FastifyInstance) => {
    app.get('/v1/fleet', async () => fleet.nodes());
  };
}
