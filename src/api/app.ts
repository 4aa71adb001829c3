// The REST API (docs/api.md; GET /openapi.json): health here, everything else plugs in.
// Who may call what is decided in one place (access.ts, with the route table in roles.ts).
import fastifySwagger from '@fastify/swagger';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { accessControl, isLoopbackAddress } from './access.js';
import type { AuditLog } from './audit.js';
import { auditRequests } from './audit.js';
import { errorHandler } from './errors.js';
import { healthzDoc, readyzDoc } from './operations-docs.js';
import { openApiOptions } from './openapi.js';
import { packageVersion } from './package-files.js';
import { routeRoles } from './roles.js';
import { sessionRoutes } from './session-routes.js';
import { Sessions } from './sessions.js';
import type { ApiTokens } from './tokens.js';
import { zodValidation } from './validation.js';
import { yamlBodies } from './yaml-body.js';

export interface ApiOptions {
  log: Logger;
  /** The configured tokens; undefined: the API is open (README "Securing Sluice"). */
  tokens?: ApiTokens;
  sessions?: Sessions;
  audit?: AuditLog;
  /** The address the API listens on (an open API on loopback answers only loopback names). */
  host: string;
  /** GET /metrics without a token even when tokens are configured. */
  metricsPublic?: boolean;
  /** Plugins that add routes (services, fleet, rollouts, ...). */
  routes: ((app: FastifyInstance) => void)[];
  /** Whether to take traffic; when not, why (starting, store not writable, ...). */
  ready: () => { ready: boolean; reason?: string };
}

export function buildApi(opts: ApiOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: 4 * 1024 * 1024,
  });
  app.setErrorHandler(errorHandler);
  zodValidation(app); // routes validate with their zod schemas, which GET /openapi.json shows
  app.removeContentTypeParser('text/plain'); // bodies are JSON: anything else is 415
  yamlBodies(app); // ...or YAML (application/yaml), parsed into the same objects
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url}`, details: [] } });
  });
  const sessions = opts.sessions ?? new Sessions();
  accessControl(app, { tokens: opts.tokens, sessions, roles: routeRoles({ metricsPublic: !!opts.metricsPublic }), listenHost: opts.host });
  if (opts.audit) auditRequests(app, opts.audit);
  announceExposure(opts);

  // The document collects routes as they are added: it goes first, the routes after it.
  void app.register(fastifySwagger, openApiOptions(packageVersion()));
  void app.register(async (app) => {
    // Probes run every few seconds: keep them out of the request log.
    app.get('/healthz', { logLevel: 'silent', schema: healthzDoc }, async () => ({ status: 'ok' }));
    app.get('/readyz', { logLevel: 'silent', schema: readyzDoc }, async (_req, reply) => {
      const { ready, reason } = opts.ready();
      if (!ready) return reply.status(503).send({ status: 'not_ready', reason });
      return { status: 'ready' };
    });
    sessionRoutes(opts.tokens, sessions)(app);
    for (const r of opts.routes) r(app);
  });
  return app;
}

/** Says at start-up how open the API is. */
function announceExposure(opts: ApiOptions): void {
  const log = opts.log.child({ component: 'api' });
  if (opts.tokens) log.info({ tokens: opts.tokens.size, metricsPublic: !!opts.metricsPublic, audit: opts.audit?.file }, 'API requires a token (or a dashboard session)');
  else if (isLoopbackAddress(opts.host))
    log.info({ host: opts.host, audit: opts.audit?.file }, 'API open to local processes: no --api-tokens; it answers only requests for loopback names');
  else
    log.warn(
      { host: opts.host, audit: opts.audit?.file },
      `API is OPEN: no --api-tokens or --api-token and it listens on ${opts.host}: anyone who can reach this port can change routing (state-changing requests still need JSON and a same-origin Origin)`,
    );
}
