// /v1/session: dashboard sign-in. POST with a token sets the session cookie; GET says who the
// caller is (the dashboard shows viewers no action buttons); DELETE signs out.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError } from './errors.js';
import { empty, errors, json } from './route-docs.js';
import { ErrorSchema, SessionSchema } from './schemas.js';
import type { Sessions } from './sessions.js';
import { clearedSessionCookie, sessionCookie, sessionIdOf } from './sessions.js';
import type { ApiTokens } from './tokens.js';

const SignIn = z.strictObject({ token: z.string().min(1).max(4096).describe('an API token; the answer sets the sluice_session cookie instead of keeping it') });
const tags = ['session'];

export function sessionRoutes(tokens: ApiTokens | undefined, sessions: Sessions) {
  return (plain: FastifyInstance) => {
    const app = plain.withTypeProvider<ZodTypeProvider>();
    app.post(
      '/v1/session',
      {
        schema: {
          operationId: 'signIn',
          summary: 'Sign in with a token: sets the HttpOnly session cookie (for the dashboard)',
          tags,
          body: SignIn,
          bodyExample: { token: '<the token>' },
          response: {
            200: json('signed in; Set-Cookie: sluice_session=...', SessionSchema, { name: 'alice', role: 'operator', expiresAt: '2026-03-01T22:15:02.114Z' }),
            401: json('wrong token', ErrorSchema, { error: { code: 'unauthenticated', message: 'wrong token', details: [] } }),
            ...errors(409),
          },
        },
      },
      async (req, reply) => {
        const { token } = req.body;
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
      },
    );

    app.get(
      '/v1/session',
      {
        schema: {
          operationId: 'getSession',
          summary: 'Who the caller is: name, role, and how they authenticated (token, session, open)',
          tags,
          response: { 200: json('the caller', SessionSchema, { name: 'alice', role: 'operator', via: 'session', tokens: true, expiresAt: '2026-03-01T22:15:02.114Z' }) },
        },
      },
      async (req) => {
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
      },
    );

    app.delete(
      '/v1/session',
      { schema: { operationId: 'signOut', summary: 'Sign out: ends the session the cookie names', tags, response: { 204: empty('signed out; the cookie is cleared') } } },
      async (req, reply) => {
        const sid = sessionIdOf(req);
        if (sid) sessions.delete(sid);
        return reply.header('set-cookie', clearedSessionCookie()).status(204).send();
      },
    );
  };
}
