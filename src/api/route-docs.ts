// What a route says about itself for GET /openapi.json, next to its validation schemas: its
// answers (status → description, schema, example) and the errors it may give. Errors that
// every route of a kind may give (401/403 from access control, 400/413/415 for bodies) are
// added by openapi.ts from the role table, so routes list only their own (404, 409, 503, 507).
import type { z } from 'zod';
import { ErrorSchema } from './schemas.js';

export interface MediaDoc {
  schema: z.ZodType;
  example?: unknown;
}
export interface ResponseDoc {
  description: string;
  content?: Record<string, MediaDoc>;
}

/** A JSON answer. */
export function json(description: string, schema: z.ZodType, example?: unknown): ResponseDoc {
  return { description, content: { 'application/json': { schema, ...(example === undefined ? {} : { example }) } } };
}

/** An answer in another media type (the page, /metrics, the event stream). */
export function media(description: string, type: string, schema: z.ZodType, example?: unknown): ResponseDoc {
  return { description, content: { [type]: { schema, ...(example === undefined ? {} : { example }) } } };
}

/** An answer without a body. */
export function empty(description: string): ResponseDoc {
  return { description };
}

export const ERROR_DOCS = {
  400: ['invalid_argument: a field is wrong; details name each one', 'invalid_argument', 'steps[1].setWeight: Too big: expected number to be <=100'],
  401: ['unauthenticated: missing or wrong token or session', 'unauthenticated', 'missing or wrong credentials: send Authorization: Bearer <token>, or sign in with POST /v1/session'],
  403: [
    'permission_denied: the role is too low; forbidden: a cross-origin request, or a non-loopback Host on an API without tokens',
    'permission_denied',
    'POST /v1/rollouts needs the operator role; "vera" is viewer',
  ],
  404: ['not_found: no such service or rollout', 'not_found', 'no rollout for service "echo"'],
  409: ['conflict: the change does not fit the current state (a name clash, a finished rollout, an active one)', 'conflict', 'service "echo" already has an active rollout'],
  413: ['the body is larger than 4 MiB (JSON) or 1 MiB (YAML)', 'invalid_argument', 'Request body is too large'],
  415: ['unsupported_media_type: POST and PUT need content-type application/json or application/yaml', 'unsupported_media_type', 'POST needs a body with content-type: application/json (got text/plain); send {} when there is nothing to say'],
  503: ['unavailable: the store cannot be written (read-only or full disk); nothing changed', 'unavailable', 'the store cannot be written: EROFS'],
  507: [
    'not_persisted: the rollback was pushed to the fleet but could not be stored; it is retried until it lands. The body also has `rollout` (and `fleet` with ?wait=ack)',
    'not_persisted',
    'rolled back on the fleet but not persisted: EROFS; retrying',
  ],
} as const satisfies Record<number, readonly [string, string, string]>;
export type ErrorStatus = keyof typeof ERROR_DOCS;

function errorDoc(status: ErrorStatus): ResponseDoc {
  const [description, code, message] = ERROR_DOCS[status];
  return json(description, ErrorSchema, { error: { code, message, details: status === 400 ? [{ field: 'steps[1].setWeight', message: 'Too big: expected number to be <=100' }] : [] } });
}

/** The error answers a route gives beyond the common ones. */
export function errors(...statuses: ErrorStatus[]): Record<number, ResponseDoc> {
  return Object.fromEntries(statuses.map((s) => [s, errorDoc(s)]));
}

/** The common errors for a route: 401/403 unless public, 403 for changes, 400/413/415 with a body. */
export function commonErrors(opts: { isPublic: boolean; changes: boolean; hasBody: boolean; validates: boolean }): Record<number, ResponseDoc> {
  const statuses: ErrorStatus[] = [];
  if (opts.validates || opts.hasBody) statuses.push(400);
  if (!opts.isPublic) statuses.push(401);
  if (!opts.isPublic || opts.changes) statuses.push(403);
  if (opts.hasBody) statuses.push(413, 415);
  return errors(...statuses);
}
