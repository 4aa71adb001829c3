// Dashboard sign-in: a token becomes an HttpOnly, SameSite=Strict session cookie that
// authenticates like the token (name and role), including the live event stream, and ends at
// sign-out. Real server, real HTTP.
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sessions } from '../../src/api/sessions.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';
import { call, cookieOf, NAMES, roleTokensFile, TOKENS } from './access-fixtures.js';

/** An open event stream: the text received so far, and whether the server ended it. */
async function openStream(port: number, cookie?: string) {
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/v1/events`, { headers: cookie ? { cookie } : {}, signal: controller.signal });
  const stream = { status: res.status, text: '', ended: false, close: () => controller.abort() };
  if (res.ok) {
    void (async () => {
      const reader = res.body!.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          stream.text += new TextDecoder().decode(value);
        }
      } catch {
        // aborted or reset
      }
      stream.ended = true;
    })();
  }
  return stream;
}

describe('dashboard sessions', () => {
  let sluice: TestSluice;
  let port: number;
  const origin = () => `http://127.0.0.1:${port}`;

  beforeAll(async () => {
    sluice = await startTestSluice({ apiTokens: roleTokensFile() });
    port = sluice.httpPort;
    expect((await call(port, 'PUT', '/v1/services/echo', { token: TOKENS.admin, body: serviceOf({ v1: 1, v2: 2 }) })).status).toBe(201);
    const rollout = { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: { duration: '1h' } }, { setWeight: 50 }] };
    expect((await call(port, 'POST', '/v1/rollouts', { token: TOKENS.operator, body: rollout })).status).toBe(201);
  });
  afterAll(async () => sluice?.stop());

  /** A change of the rollout: pause it, or resume it when a user paused it. */
  const toggle = async () => {
    const paused = (await call(port, 'GET', '/v1/rollouts/echo', { token: TOKENS.viewer })).body.pausedBy === 'user';
    const res = await call(port, 'POST', `/v1/rollouts/echo/${paused ? 'resume' : 'pause'}`, { token: TOKENS.operator, body: {} });
    expect(res.status).toBe(200);
    return res;
  };

  const signIn = async (token: string) => {
    const res = await call(port, 'POST', '/v1/session', { body: { token }, headers: { origin: origin() } });
    expect(res.status).toBe(200);
    return { res, cookie: cookieOf(res) };
  };

  it('turns a token into an HttpOnly, SameSite=Strict cookie, never echoing the token', async () => {
    const { res, cookie } = await signIn(TOKENS.viewer);
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/^sluice_session=[A-Za-z0-9_-]{43}; /);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).toContain('Path=/');
    expect(set).toMatch(/Max-Age=\d+/);
    expect(JSON.stringify(res.body)).not.toContain(TOKENS.viewer);
    expect(res.body).toMatchObject({ name: NAMES.viewer, role: 'viewer' });
    expect((await call(port, 'GET', '/v1/session', { cookie })).body).toMatchObject({ name: NAMES.viewer, role: 'viewer', via: 'session', tokens: true });
  });

  it('refuses a wrong token, and a sign-in from another site', async () => {
    expect((await call(port, 'POST', '/v1/session', { body: { token: 'guess' } })).status).toBe(401);
    const cross = await call(port, 'POST', '/v1/session', { body: { token: TOKENS.admin }, headers: { origin: 'https://evil.example' } });
    expect(cross.status).toBe(403);
    expect(cross.headers.get('set-cookie')).toBeNull();
  });

  it('feeds the live event stream with the cookie; without it the stream is 401', async () => {
    expect((await openStream(port)).status).toBe(401);
    expect((await openStream(port, 'sluice_session=' + 'x'.repeat(43))).status).toBe(401);
    const { cookie } = await signIn(TOKENS.viewer);
    const stream = await openStream(port, cookie);
    expect(stream.status).toBe(200);
    await eventually(() => stream.text.includes('event: rollout')); // the current state first
    const before = stream.text.length;
    const changed = await toggle();
    await eventually(() => stream.text.slice(before).includes(`"updatedAt":"${changed.body.updatedAt}"`));
    stream.close();
  });

  it('gives a session the role of its token: a viewer cannot act, an operator can (same origin only)', async () => {
    const viewer = (await signIn(TOKENS.viewer)).cookie;
    const operator = (await signIn(TOKENS.operator)).cookie;
    const pause = (cookie: string, headers: Record<string, string> = { origin: origin() }) => call(port, 'POST', '/v1/rollouts/echo/pause', { cookie, body: {}, headers });
    const denied = await pause(viewer);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain('needs the operator role');
    expect((await pause(operator, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await call(port, 'POST', '/v1/rollouts/echo/pause', { cookie: operator, headers: { 'content-type': 'text/plain' }, body: '{}' })).status).toBe(415);
    if ((await call(port, 'GET', '/v1/rollouts/echo', { cookie: viewer })).body.pausedBy === 'user') await toggle();
    const paused = await pause(operator);
    expect(paused.status).toBe(200);
    expect(paused.body.history.filter((h: { event: string }) => h.event === 'PausedByUser').at(-1)).toMatchObject({ by: NAMES.operator });
    expect((await call(port, 'GET', '/v1/rollouts/echo', { cookie: viewer })).body.pausedBy).toBe('user');
  });

  it('signs out: the cookie stops working and an open stream ends', async () => {
    const { cookie } = await signIn(TOKENS.viewer);
    const stream = await openStream(port, cookie);
    expect(stream.status).toBe(200);
    const out = await call(port, 'DELETE', '/v1/session', { cookie, headers: { origin: origin() } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^sluice_session=; .*Max-Age=0/);
    expect((await call(port, 'GET', '/v1/services', { cookie })).status).toBe(401);
    expect((await openStream(port, cookie)).status).toBe(401);
    // The open stream notices at the next change (or keepalive).
    await toggle();
    await eventually(() => stream.ended);
  });

  it('has nothing to sign in to when the server has no tokens', async () => {
    const open = await startTestSluice();
    try {
      const res = await call(open.httpPort, 'POST', '/v1/session', { body: { token: 'x' } });
      expect(res.status).toBe(409);
      expect(res.body.error.message).toContain('no API tokens');
      expect((await call(open.httpPort, 'GET', '/v1/session')).body).toMatchObject({ name: 'api', role: 'admin', via: 'open', tokens: false });
    } finally {
      await open.stop();
    }
  });
});

describe('session store', () => {
  it('keeps at most max sessions, dropping the least recently used', () => {
    const sessions = new Sessions({ max: 3 });
    const ids = Array.from({ length: 3 }, () => sessions.create('h').id);
    expect(sessions.use(ids[0]!)).toBeDefined(); // now the most recently used
    const fourth = sessions.create('h').id;
    expect(sessions.size).toBe(3);
    expect(sessions.peek(ids[1]!)).toBeUndefined();
    expect(sessions.peek(ids[0]!)).toBeDefined();
    expect(sessions.peek(fourth)).toBeDefined();
  });

  it('ends a session after the idle time, and after the maximum age even when used', () => {
    let now = 0;
    const sessions = new Sessions({ idleMs: 100, maxAgeMs: 250, now: () => now });
    const a = sessions.create('h').id;
    const b = sessions.create('h').id;
    for (now = 90; now <= 240; now += 90) expect(sessions.use(a)).toBeDefined(); // kept alive by use
    expect(sessions.peek(b)).toBeUndefined(); // idle past 100
    now = 250;
    expect(sessions.use(a)).toBeUndefined(); // past the maximum age
    expect(sessions.size).toBe(0);
  });

  it('drops expired sessions first when full', () => {
    let now = 0;
    const sessions = new Sessions({ idleMs: 100, max: 2, now: () => now });
    sessions.create('h');
    now = 50;
    const live = sessions.create('h').id;
    now = 120; // the first is expired, the second is not
    sessions.create('h');
    expect(sessions.peek(live)).toBeDefined();
  });
});

describe('the dashboard page', () => {
  it('is served without a token, holds no token, and its script compiles', async () => {
    const sluice = await startTestSluice({ apiTokens: roleTokensFile() });
    try {
      const page = await call(sluice.httpPort, 'GET', '/');
      expect(page.status).toBe(200);
      const html = page.body as string;
      expect(html).not.toMatch(/token-|Bearer/);
      const script = (await call(sluice.httpPort, 'GET', '/assets/dashboard.js')).body as string;
      expect(() => new vm.Script(script)).not.toThrow();
      expect(script).toContain("fetch('/v1/session', { method: 'POST'");
      expect(script).not.toMatch(/authorization|localStorage\.(get|set)Item/i);
    } finally {
      await sluice.stop();
    }
  });
});
