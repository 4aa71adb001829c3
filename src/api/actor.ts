// Who asked, for the audit trail.
import type { FastifyRequest } from 'fastify';

/** An optional header for the audit trail, else "api". */
export function actor(req: FastifyRequest): string {
  const who = req.headers['x-sluice-user'];
  return typeof who === 'string' && /^[\w.@: -]{1,64}$/.test(who) ? who : 'api';
}
