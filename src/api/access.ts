// Access control for every request, in one onRequest hook:
// 1. with no tokens configured and a loopback listener, the Host must be a loopback name (a web
//    page cannot reach the open API through DNS rebinding);
// 2. who is calling: a bearer token, else a session cookie, else nobody (no tokens: everyone,
//    named as before by X-Sluice-User or "api");
// 3. whether that caller's role may use the route (roles.ts): 401 without a valid credential,
//    403 when the role is too low;
// 4. state-changing requests, whoever sends them, need a JSON/YAML content type and an Origin
//    that is absent or the server's own: a form or script on another site cannot change anything.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';
import type { Access, Role } from './roles.js';
import { allows, routeKey, UNKNOWN_ROUTE } from './roles.js';
import type { Sessions } from './sessions.js';
import { sessionIdOf } from './sessions.js';
import type { ApiTokens } from './tokens.js';

export interface Principal {
  /** The token's name; with no tokens configured, X-Sluice-User or "api". */
  name: string;
  role: Role;
  via: 'token' | 'session' | 'open';
  /** Whether the credential still holds (token still listed, session not ended): long streams re-check. */
  stillValid(): boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface AccessOptions {
  /** Undefined: no tokens configured, the API is open. */
  tokens?: ApiTokens;
  sessions: Sessions;
  roles: ReadonlyMap<string, Access>;
  /** The address the API listens on. */
  listenHost: string;
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
/** Media types no HTML form can send and no cross-site script can send without a CORS preflight. */
const BODY_TYPES = new Set(['application/json', 'application/yaml', 'application/x-yaml', 'text/yaml']);

export function accessControl(app: FastifyInstance, opts: AccessOptions): void {
  const { tokens, sessions, roles } = opts;
  const guardHost = !tokens && isLoopbackAddress(opts.listenHost);
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (!roles.has(routeKey(method, route.url))) throw new Error(`route ${method} ${route.url} has no entry in ROUTE_ROLES (src/api/roles.ts)`);
    }
  });

  app.addHook('onRequest', async (req) => {
    const pattern = req.routeOptions.url;
    const need = (pattern && roles.get(routeKey(req.method, pattern))) || UNKNOWN_ROUTE;

    if (guardHost && !isLoopbackHostHeader(req.headers.host))
      throw new HttpError(403, 'forbidden', `Host "${req.headers.host}" is not a loopback name: this API has no tokens and listens on ${opts.listenHost}, so it answers only requests for localhost, 127.0.0.1 or [::1] (configure --api-tokens to serve other names)`);

    req.principal = tokens ? authenticate(req, tokens, sessions, need) : { name: claimedUser(req) ?? 'api', role: 'admin', via: 'open', stillValid: () => true };
    if (need !== 'public') {
      if (!req.principal)
        throw new HttpError(401, 'unauthenticated', 'missing or wrong credentials: send Authorization: Bearer <token>, or sign in with POST /v1/session');
      if (!allows(req.principal.role, need))
        throw new HttpError(403, 'permission_denied', `${req.method} ${pattern} needs the ${need} role; "${req.principal.name}" is ${req.principal.role}`);
    }

    if (!UNSAFE_METHODS.has(req.method)) return;
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host))
      throw new HttpError(403, 'forbidden', `cross-origin request refused: Origin ${origin} is not this server (Host ${req.headers.host ?? 'missing'}); behind a proxy, forward the Host header`);
    if (BODY_METHODS.has(req.method)) {
      const type = req.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
      if (!type || !BODY_TYPES.has(type))
        throw new HttpError(415, 'unsupported_media_type', `${req.method} needs a body with content-type: application/json${type ? ` (got ${type})` : ''}; send {} when there is nothing to say`);
    }
  });
}

/** The caller, or null. A wrong bearer token on a protected route is a 401 even if a cookie is valid. */
function authenticate(req: FastifyRequest, tokens: ApiTokens, sessions: Sessions, need: Access): Principal | null {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer +(\S+) *$/i.exec(header);
    const id = m ? tokens.authenticate(m[1]!) : undefined;
    if (!id) {
      if (need === 'public') return null;
      throw new HttpError(401, 'unauthenticated', 'wrong bearer token (Authorization: Bearer <token>)');
    }
    return { name: id.name, role: id.role, via: 'token', stillValid: () => tokens.current(id.sha256) !== undefined };
  }
  const sid = sessionIdOf(req);
  const session = sid === undefined ? undefined : sessions.use(sid);
  const id = session && tokens.current(session.tokenSha256);
  if (!session || !id) return null;
  return {
    name: id.name,
    role: id.role,
    via: 'session',
    stillValid: () => sessions.peek(session.id) !== undefined && tokens.current(session.tokenSha256) !== undefined,
  };
}

/** X-Sluice-User: a name the caller gives for the audit trail (recorded beside the token's, never instead). */
export function claimedUser(req: FastifyRequest): string | undefined {
  const who = req.headers['x-sluice-user'];
  return typeof who === 'string' && /^[\w.@: -]{1,64}$/.test(who) ? who.trim() || undefined : undefined;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const o = new URL(origin); // "null" (sandboxed pages, redirects) does not parse: refused
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    return new URL(`${o.protocol}//${host}`).host === o.host;
  } catch {
    return false;
  }
}

export function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return true; // HTTP/1.0 tools; browsers always send Host
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
