// /v1/session: dashboard sign-in. POST with a token sets the session cookie; GET says who the
// caller is (the dashboard shows viewers no action buttons); DELETE signs out.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HttpError, parseOr400 } from './errors.js';
import type { Sessions } from './sessions.js';
import { clearedSessionCookie, sessionCookie, sessionIdOf } from './sessions.js';
import type { ApiTokens } from './tokens.js';

const SignIn = z.strictObject({ token: z.string().min(1).max(4096) });

export function sessionRoutes(tokens: ApiTokens | undefined, sessions: Sessions) {
  return (app: FastifyInstance) => {
    app.post('/v1/session', async (req, reply) => {
      const { token } = parseOr400(SignIn, req.body);
      if (!tokens)
        throw new HttpError(409, 'failed_precondition', 'this server has no API tokens (--api-tokens, --api-token): the API is open and there is nothing to sign in to');
      const id = tokens.authenticate(token);
      if (!id) throw new HttpError(401, 'unauthenticated', 'wrong token');
      const session = sessions.create(id.sha256);
      req.principal = { name: id.name, role: id.role, via: 'session', stillValid: () => true }; // for the audit line
      return reply
        .header('set-cookie', sessionCookie(session.id, sessions.maxAgeMs))
        .header('cache-control', 'no-store')
        .send({ name: id.name, role: id.role, expiresAt: sessions.expiresAt(session).toISOString() });
    });

    app.get('/v1/session', async (req) => {
      const p = req.principal!;
      const sid = p.via === 'session' ? sessionIdOf(req) : undefined;
      const session = sid ? sessions.peek(sid) : undefined;
      return {
        name: p.name,
        role: p.role,
        via: p.via,
        tokens: !!tokens,
        ...(session ? { expiresAt: sessions.expiresAt(session).toISOString() } : {}),
      };
    });

    app.delete('/v1/session', async (req, reply) => {
      const sid = sessionIdOf(req);
      if (sid) sessions.delete(sid);
      return reply.header('set-cookie', clearedSessionCookie()).status(204).send();
    });
  };
}
