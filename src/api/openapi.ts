// /openapi.json, generated from the same zod schemas that validate requests.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { RolloutSpecSchema } from '../model/rollout.js';
import { ServiceSchema } from '../model/service.js';

function schema(s: z.ZodType): unknown {
  return z.toJSONSchema(s, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (s: unknown) => ({ content: { 'application/json': { schema: s } } });
const error = { description: 'error', ...json(ref('Error')) };
const serviceParam = { name: 'service', in: 'path', required: true, schema: { type: 'string' } };
const action = (summary: string, body?: unknown) => ({
  post: {
    summary,
    parameters: [serviceParam],
    ...(body ? { requestBody: json(body) } : {}),
    responses: { 200: { description: 'the rollout after the change', ...json(ref('Rollout')) }, 404: error, 409: error },
  },
});

export function openApiDocument(): object {
  return {
    openapi: '3.0.3',
    info: { title: 'Sluice', version: '0.1.0', description: 'Gray releases for Envoy and proxyless gRPC fleets.' },
    components: {
      schemas: {
        Service: schema(ServiceSchema),
        RolloutSpec: schema(RolloutSpecSchema),
        Rollout: { type: 'object', description: 'rollout state: phase, step, weights, history (see API.md)' },
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'array', items: {} } },
            },
          },
        },
      },
      // Which role each route needs: README "Securing Sluice" (src/api/roles.ts).
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: 'sluice_session' } },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths: {
      '/v1/services': { get: { summary: 'list services', responses: { 200: { description: 'services' } } } },
      '/v1/services/{service}': {
        parameters: [serviceParam],
        get: { summary: 'read a service', responses: { 200: json(ref('Service')), 404: error } },
        put: {
          summary: 'create or replace a service',
          requestBody: json(ref('Service')),
          responses: { 200: { description: 'replaced' }, 201: { description: 'created' }, 400: error, 409: error },
        },
        delete: { summary: 'delete a service', responses: { 204: { description: 'deleted' }, 404: error, 409: error } },
      },
      '/v1/rollouts': {
        get: { summary: 'list rollouts', responses: { 200: { description: 'rollouts' } } },
        post: {
          summary: 'start a rollout',
          requestBody: json(ref('RolloutSpec')),
          responses: { 201: json(ref('Rollout')), 400: error, 404: error, 409: error },
        },
      },
      '/v1/rollouts/{service}': { get: { summary: 'read a rollout', parameters: [serviceParam], responses: { 200: json(ref('Rollout')), 404: error } } },
      '/v1/rollouts/{service}/promote': action('leave the current pause, or {"full": true} to promote now', { type: 'object', properties: { full: { type: 'boolean' } } }),
      '/v1/rollouts/{service}/pause': action('pause the schedule'),
      '/v1/rollouts/{service}/resume': action('resume after a pause'),
      '/v1/rollouts/{service}/rollback': {
        post: {
          ...action('100% to stable at once; ?wait=ack answers when every node has applied it').post,
          parameters: [
            serviceParam,
            { name: 'wait', in: 'query', schema: { type: 'string', enum: ['ack'] } },
            { name: 'timeout', in: 'query', schema: { type: 'string', example: '5s' } },
          ],
          requestBody: json({ type: 'object', properties: { reason: { type: 'string' } } }),
        },
      },
      '/v1/fleet': { get: { summary: 'connected xDS nodes and what each holds', responses: { 200: { description: 'nodes' } } } },
      '/v1/events': { get: { summary: 'rollout changes as server-sent events', responses: { 200: { description: 'text/event-stream' } } } },
      '/v1/session': {
        post: {
          security: [],
          summary: 'sign in with a token: sets the HttpOnly session cookie (for the dashboard)',
          requestBody: json({ type: 'object', required: ['token'], properties: { token: { type: 'string' } } }),
          responses: { 200: { description: 'name, role, expiresAt' }, 401: error },
        },
        get: { summary: 'who the caller is: name, role, via (token, session, open)', responses: { 200: { description: 'the caller' }, 401: error } },
        delete: { security: [], summary: 'sign out: ends the session the cookie names', responses: { 204: { description: 'signed out' } } },
      },
      '/healthz': { get: { security: [], summary: 'process up', responses: { 200: { description: 'ok' } } } },
      '/readyz': { get: { security: [], summary: 'store and xDS ready', responses: { 200: { description: 'ready' }, 503: { description: 'starting' } } } },
    },
  };
}

export function openApiRoutes() {
  const doc = openApiDocument();
  return (app: FastifyInstance) => {
    app.get('/openapi.json', async () => doc);
  };
}
