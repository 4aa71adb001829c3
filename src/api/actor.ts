// Who asked, for history (`by`) and the audit log. With tokens, the token's name; a name the
// caller gives in X-Sluice-User is recorded beside it ("alice (for bob)"), never instead of it.
// Without tokens, as before: X-Sluice-User, else "api".
import type { FastifyRequest } from 'fastify';
import { claimedUser } from './access.js';

export function actor(req: FastifyRequest): string {
  const p = req.principal;
  const user = claimedUser(req);
  if (!p || p.via === 'open') return user ?? 'api';
  return user && user !== p.name ? `${p.name} (for ${user})` : p.name;
}
