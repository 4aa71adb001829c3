// One error shape for the whole API: {"error": {"code", "message", "details"}}.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import type { ZodType } from 'zod';
import { TransitionError } from '../rollout/machine.js';
import { ConflictError, InvalidFieldError, NotFoundError, NotPersistedError, NotWritableError } from '../state/errors.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown[] = [],
    /** More top-level fields of the error body (e.g. the rollout a rollback left behind). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

/** Zod issues → 400 naming each field at fault. */
export function validationError(err: ZodError, prefix: readonly PropertyKey[] = []): HttpError {
  const details = err.issues.map((i) => {
    // An unknown field is named itself, not its parent object.
    const path = i.code === 'unrecognized_keys' ? [...prefix, ...i.path, i.keys[0]!] : [...prefix, ...i.path];
    return { field: pathOf(path) || '(body)', message: i.message };
  });
  const message = details.map((d) => `${d.field}: ${d.message}`).join('; ');
  return new HttpError(400, 'invalid_argument', message, details);
}

/** Parses a body, query or path with a schema, or throws a 400 naming each field at fault.
 *  A missing body counts as `{}`, so the error names the required fields. */
export function parseOr400<T>(schema: ZodType<T>, value: unknown, prefix: readonly PropertyKey[] = []): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw validationError(r.error, prefix);
  return r.data;
}

export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void {
  let e: HttpError;
  if (err instanceof HttpError) e = err;
  else if (err instanceof ZodError) e = validationError(err);
  else if (err instanceof ConflictError)
    e = new HttpError(409, 'conflict', err.message, err.field ? [{ field: err.field, message: err.message }] : []);
  else if (err instanceof NotFoundError) e = new HttpError(404, 'not_found', err.message);
  else if (err instanceof TransitionError) e = new HttpError(409, 'conflict', err.message);
  else if (err instanceof InvalidFieldError)
    e = new HttpError(400, 'invalid_argument', `${err.field}: ${err.message}`, [{ field: err.field, message: err.message }]);
  else if (err instanceof NotWritableError) e = new HttpError(503, 'unavailable', err.message);
  // The fleet has the rollback; only the disk does not: a 5xx that says exactly that.
  else if (err instanceof NotPersistedError) e = new HttpError(507, 'not_persisted', err.message, [], { rollout: err.value });
  else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
    const code = err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_argument';
    e = new HttpError(err.statusCode, code, err.statusCode === 400 && /JSON/i.test(err.message) ? `body: malformed JSON (${err.message})` : err.message, [{ field: '(body)', message: err.message }]);
  } else {
    req.log.error({ err }, 'request failed');
    e = new HttpError(500, 'internal', 'internal error');
  }
  void reply.status(e.status).send({ error: { code: e.code, message: e.message, details: e.details }, ...e.extra });
}
