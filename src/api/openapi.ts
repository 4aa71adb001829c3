// GET /openapi.json (OpenAPI 3.1), generated from the routes themselves: @fastify/swagger
// collects every route as it is registered, and the transform below renders the zod schemas
// Fastify validates that route with (zod's own JSON Schema output), the answers each route
// declares (route-docs.ts), the errors access control gives it and the role it needs
// (roles.ts, the table access.ts enforces).
import type { SwaggerOptions } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { commonErrors } from './route-docs.js';
import type { ResponseDoc } from './route-docs.js';
import { ROUTE_ROLES, routeKey } from './roles.js';
import { components, EXACTLY_ONE } from './schemas.js';
import { YAML_CONTENT_TYPES } from './yaml-body.js';

const COMPONENTS = '#/components/schemas/';
const PLACEHOLDER = '__sluice_component__';
const BODY_TYPES = ['application/json', ...YAML_CONTENT_TYPES.slice(0, 1)];

/** zod's JSON Schema output, with the "exactly one of" rules the model checks in code. */
const baseOptions = {
  target: 'draft-2020-12',
  io: 'input',
  unrepresentable: 'any',
  cycles: 'ref',
  reused: 'inline',
  override: ({ zodSchema, jsonSchema }: { zodSchema: z.core.$ZodTypes; jsonSchema: Record<string, unknown> }) => {
    // A model schema ending in .transform() keeps its description on the outer schema.
    const description = components.get(zodSchema)?.description;
    if (description && jsonSchema.description === undefined) jsonSchema.description = description;
    const groups = EXACTLY_ONE.get(zodSchema);
    if (!groups) return;
    const oneOf = (keys: readonly string[]) => ({ oneOf: keys.map((k) => ({ required: [k] })) });
    if (groups.length === 1) Object.assign(jsonSchema, oneOf(groups[0]!));
    else jsonSchema.allOf = groups.map(oneOf);
  },
} as const;

function strip(schema: unknown): Record<string, unknown> {
  const { $schema: _s, $id: _i, id: _d, ...rest } = schema as Record<string, unknown>;
  return rest;
}

/** Every named schema, for components/schemas. */
function componentSchemas(): Record<string, object> {
  const { schemas } = z.toJSONSchema(components, { ...baseOptions, uri: (id) => COMPONENTS + id });
  return Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, strip(s)] as const));
}

/** One schema of a route: a reference when it is a named one, else inline (naming what it uses). */
function routeSchema(schema: z.ZodType): Record<string, unknown> {
  const id = components.get(schema)?.id;
  if (id) return { $ref: COMPONENTS + id };
  const one = z.registry<{ id: string }>();
  one.add(schema, { id: 'route' });
  const { schemas } = z.toJSONSchema(one, { ...baseOptions, metadata: components, uri: () => PLACEHOLDER });
  return JSON.parse(JSON.stringify(strip(schemas.route)), (_k, v: unknown) =>
    typeof v === 'string' && v.startsWith(PLACEHOLDER) ? COMPONENTS + v.slice(v.lastIndexOf('/') + 1) : v,
  ) as Record<string, unknown>;
}

function responseObject(doc: ResponseDoc): Record<string, unknown> {
  if (!doc.content) return { description: doc.description, type: 'null' };
  return {
    description: doc.description,
    content: Object.fromEntries(
      Object.entries(doc.content).map(([type, m]) => [type, { schema: routeSchema(m.schema), ...(m.example === undefined ? {} : { example: m.example }) }]),
    ),
  };
}

interface RouteSchema {
  body?: z.ZodType;
  params?: z.ZodType;
  querystring?: z.ZodType;
  response?: Record<string, ResponseDoc>;
  bodyExample?: unknown;
  description?: string;
  [key: string]: unknown;
}

function transformRoute({ schema, url, route }: { schema: unknown; url: string; route: { method: string | string[]; url: string } }) {
  const s = (schema ?? {}) as RouteSchema;
  const method = [route.method].flat()[0]!;
  const access = ROUTE_ROLES[routeKey(method, route.url)] ?? 'viewer';
  const isPublic = access === 'public';
  const { body, params, querystring, response = {}, bodyExample, description, ...rest } = s;
  const errs = commonErrors({ isPublic, changes: method !== 'GET', hasBody: !!body, validates: !!(params || querystring) });
  const responses: Record<string, ResponseDoc> = { ...errs, ...response }; // a route's own description of a status wins
  const out: Record<string, unknown> = {
    ...rest,
    description: [description, isPublic ? 'No token needed.' : `Needs the **${access}** role (a bearer token or a dashboard session).`].filter(Boolean).join('\n\n'),
    security: isPublic ? [] : [{ bearer: [] }, { session: [] }],
    response: Object.fromEntries(Object.entries(responses).map(([code, doc]) => [code, responseObject(doc)])),
  };
  if (params) out.params = routeSchema(params);
  if (querystring) out.querystring = routeSchema(querystring);
  if (body) {
    out.body = { ...routeSchema(body), ...(bodyExample === undefined ? {} : { examples: [bodyExample] }) };
    out.consumes = BODY_TYPES;
  }
  return { schema: out, url };
}

const DESCRIPTION = `Gray (canary) releases for Envoy fleets and proxyless gRPC clients.

The users' reference, with examples, is docs/api.md in the Sluice repository; this document is
generated from the schemas the server validates requests with. Requests that change something
carry a body (\`{}\` when there is nothing to say) as application/json or application/yaml.
Every error answer is an \`Error\`: \`{"error": {"code", "message", "details": [{"field", "message"}]}}\`.`;

/** @fastify/swagger's options: register it before any route is added. */
export function openApiOptions(version: string): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Sluice', version, description: DESCRIPTION, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
      tags: [
        { name: 'services', description: 'Services and their versions' },
        { name: 'rollouts', description: 'Rollouts: create, follow, promote, pause, resume, roll back' },
        { name: 'fleet', description: 'The xDS nodes and what each applied' },
        { name: 'events', description: 'Live changes' },
        { name: 'session', description: 'Dashboard sign-in' },
        { name: 'operations', description: 'Health, readiness, status, metrics, this document, the dashboard' },
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A token from --api-tokens (or --api-token).' },
          session: { type: 'apiKey', in: 'cookie', name: 'sluice_session', description: 'The dashboard session cookie set by POST /v1/session.' },
        },
      },
    },
    transform: transformRoute as never,
    transformObject: (doc) => {
      if (!('openapiObject' in doc)) throw new Error('Sluice documents OpenAPI 3 only');
      return { ...doc.openapiObject, components: { ...doc.openapiObject.components, schemas: componentSchemas() } } as typeof doc.openapiObject;
    },
  };
}

/** GET /openapi.json: the document, built once at the first request (every route is in by then). */
export function openApiRoutes() {
  return (app: FastifyInstance) => {
    let doc: unknown;
    app.get(
      '/openapi.json',
      {
        schema: {
          operationId: 'getOpenApi',
          summary: 'This document',
          tags: ['operations'],
          response: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: z.looseObject({ openapi: z.string() }) } } } },
        },
      },
      async () => (doc ??= app.swagger()),
    );
  };
}
