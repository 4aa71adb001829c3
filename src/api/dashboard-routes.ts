// GET /: the dashboard page (its data comes from the API, under the same bearer token).
import type { FastifyInstance } from 'fastify';
import { DASHBOARD_HTML } from './dashboard-page.js';

export function dashboardRoutes() {
  return (app: FastifyInstance) => {
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML));
  };
}
