// GET /: the dashboard page (its data comes from the API, under the same credentials), and
// GET /assets/:file: its chart library (uPlot, vendored under vendor/uplot: no CDN, works offline).
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { NotFoundError } from '../state/errors.js';
import { DASHBOARD_HTML } from './dashboard-page.js';
import { DASHBOARD_SCRIPT } from './dashboard-script.js';
import { assetDoc, dashboardDoc } from './operations-docs.js';
import { findAbove } from './package-files.js';
import { errors } from './route-docs.js';

/** Every file the page loads, read once at start-up. */
function assets(): Map<string, { type: string; body: string | Buffer }> {
  const uplot = path.join(findAbove('vendor'), 'uplot');
  return new Map([
    ['uPlot.iife.min.js', { type: 'application/javascript; charset=utf-8', body: fs.readFileSync(path.join(uplot, 'uPlot.iife.min.js')) }],
    ['uPlot.min.css', { type: 'text/css; charset=utf-8', body: fs.readFileSync(path.join(uplot, 'uPlot.min.css')) }],
    ['dashboard.js', { type: 'application/javascript; charset=utf-8', body: DASHBOARD_SCRIPT }],
  ]);
}

export function dashboardRoutes() {
  const files = assets();
  return (plain: FastifyInstance) => {
    const app = plain.withTypeProvider<ZodTypeProvider>();
    app.get('/', { schema: dashboardDoc }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML));
    app.get('/assets/:file', { schema: { ...assetDoc, response: { ...assetDoc.response, ...errors(404) } } }, async (req, reply) => {
      const f = files.get(req.params.file);
      if (!f) throw new NotFoundError(`no asset "${req.params.file}"`);
      return reply.type(f.type).header('cache-control', 'public, max-age=3600').send(f.body);
    });
  };
}
