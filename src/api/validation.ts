// Fastify validates each route's params, query and body with the route's own zod schemas (the
// same ones GET /openapi.json shows), and a failure is the API's usual 400 naming each field:
// `path.service`, `query.timeout`, `steps[2].setWeight`. Answers are serialized as plain JSON:
// their schemas document them (test/api/openapi.test.ts checks real answers against them).
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import type { ZodType } from 'zod';
import { validationError } from './errors.js';

const PREFIX: Record<string, readonly string[]> = { params: ['path'], querystring: ['query'], headers: ['headers'], body: [] };

const validatorCompiler: FastifySchemaCompiler<ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    // A missing body counts as `{}`, so the error names the required fields.
    const r = schema.safeParse(data ?? {});
    return r.success ? { value: r.data } : { error: validationError(r.error, PREFIX[httpPart ?? 'body'] ?? []) };
  };

export function zodValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}
