// Dashboard sessions: a token signed in once becomes a random session id in an HttpOnly,
// SameSite=Strict cookie, so the page never holds the token and the event stream (EventSource
// cannot send headers) is authenticated too. Server-side map, bounded in count; a session ends
// after IDLE_MS without use, MAX_AGE_MS after sign-in at the latest, at sign-out, or when its
// token leaves the tokens file.
import { randomBytes } from 'node:crypto';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'sluice_session';

export interface Session {
  id: string;
  /** The token it came from (its hash): its name and current role apply. */
  tokenSha256: string;
  createdAt: number;
  lastUsedAt: number;
}

export interface SessionOptions {
  idleMs?: number;
  maxAgeMs?: number;
  /** Sessions kept at most; beyond, expired ones go first, then the least recently used. */
  max?: number;
  now?: () => number;
}

export class Sessions {
  readonly idleMs: number;
  readonly maxAgeMs: number;
  private readonly max: number;
  private readonly now: () => number;
  /** In order of last use (re-inserted on use), so the first entry is the least recently used. */
  private readonly byId = new Map<string, Session>();

  constructor(opts: SessionOptions = {}) {
    this.idleMs = opts.idleMs ?? 60 * 60_000;
    this.maxAgeMs = opts.maxAgeMs ?? 12 * 60 * 60_000;
    this.max = opts.max ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.byId.size;
  }

  create(tokenSha256: string): Session {
    if (this.byId.size >= this.max) this.dropExpired();
    while (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value!);
    const now = this.now();
    const session = { id: randomBytes(32).toString('base64url'), tokenSha256, createdAt: now, lastUsedAt: now };
    this.byId.set(session.id, session);
    return session;
  }

  /** The live session with this id, marked as used; undefined (and forgotten) once expired. */
  use(id: string): Session | undefined {
    const s = this.peek(id);
    if (!s) return undefined;
    s.lastUsedAt = this.now();
    this.byId.delete(id);
    this.byId.set(id, s);
    return s;
  }

  /** Whether the session is still live, without counting as use (a long event stream is not activity). */
  peek(id: string): Session | undefined {
    const s = this.byId.get(id);
    if (!s) return undefined;
    if (this.expired(s, this.now())) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  expiresAt(s: Session): Date {
    return new Date(Math.min(s.lastUsedAt + this.idleMs, s.createdAt + this.maxAgeMs));
  }

  private expired(s: Session, now: number): boolean {
    return now >= s.lastUsedAt + this.idleMs || now >= s.createdAt + this.maxAgeMs;
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [id, s] of this.byId) if (this.expired(s, now)) this.byId.delete(id);
  }
}

/** The session id the request's cookie names, if any. */
export function sessionIdOf(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  const id = parseCookie(header)[SESSION_COOKIE];
  return id && /^[A-Za-z0-9_-]{43}$/.test(id) ? id : undefined;
}

export function sessionCookie(id: string, maxAgeMs: number): string {
  return stringifySetCookie({ name: SESSION_COOKIE, value: id, httpOnly: true, sameSite: 'strict', path: '/', maxAge: Math.floor(maxAgeMs / 1000) });
}

export function clearedSessionCookie(): string {
  return stringifySetCookie({ name: SESSION_COOKIE, value: '', httpOnly: true, sameSite: 'strict', path: '/', maxAge: 0 });
}
