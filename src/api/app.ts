// The REST API (../shared/API.md): services, fleet, health. Rollout routes plug in here too.
import { timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { errorHandler, HttpError } from './errors.js';
import { yamlBodies } from './yaml-body.js';

export interface ApiOptions {
  log: Logger;
  apiToken?: string;
  /** Plugins that add routes (services, fleet, rollouts, ...). */
  routes: ((app: FastifyInstance) => void)[];
  ready: () => boolean;
}

// The dashboard page itself holds no data; it asks for the token when the API answers 401.
const OPEN_PATHS = new Set(['/', '/healthz', '/readyz', '/metrics', '/openapi.json']);

export function buildApi(opts: ApiOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: 4 * 1024 * 1024,
  });
  app.setErrorHandler(errorHandler);
  app.removeContentTypeParser('text/plain'); // bodies are JSON: anything else is 415
  yamlBodies(app); // ...or YAML (application/yaml), parsed into the same objects
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url}`, details: [] } });
  });
  if (opts.apiToken) {
    const expected = Buffer.from(`Bearer ${opts.apiToken}`);
    app.addHook('onRequest', async (req) => {
      if (OPEN_PATHS.has(req.url.split('?')[0]!)) return;
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected))
        throw new HttpError(401, 'unauthenticated', 'missing or wrong bearer token (Authorization: Bearer <token>)');
    });
  }
  // Probes run every few seconds: keep them out of the request log.
  app.get('/healthz', { logLevel: 'silent' }, async () => ({ status: 'ok' }));
  app.get('/readyz', { logLevel: 'silent' }, async (_req, reply) => {
    if (!opts.ready()) return reply.status(503).send({ status: 'starting' });
    return { status: 'ready' };
  });
  for (const r of opts.routes) r(app);
  return app;
}
