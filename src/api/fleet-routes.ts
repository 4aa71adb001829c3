// GET /v1/fleet: every connected xDS node and what it holds.
import type { FastifyInstance } from 'fastify';
import type { XdsServer } from '../xds/server.js';

export function fleetRoutes(xds: XdsServer) {
  return (app: FastifyInstance) => {
    app.get('/v1/fleet', async () => ({ nodes: xds.fleet() }));
  };
}
