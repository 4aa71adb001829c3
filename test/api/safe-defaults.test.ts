// Without tokens (the default) nothing a web page can send changes anything: state-changing
// requests need a JSON body type and a same-origin (or no) Origin, and an API on loopback
// answers only loopback names (no DNS rebinding). The same checks hold with tokens.
import http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';
import { call, roleTokensFile, TOKENS } from './access-fixtures.js';

describe('an API without tokens', () => {
  let sluice: TestSluice;
  let port: number;
  const rolloutState = async () => (await call(port, 'GET', '/v1/rollouts/echo')).body;

  beforeAll(async () => {
    sluice = await startTestSluice();
    port = sluice.httpPort;
    expect((await call(port, 'PUT', '/v1/services/echo', { body: serviceOf({ v1: 1, v2: 2 }) })).status).toBe(201);
    expect((await call(port, 'POST', '/v1/rollouts', { body: { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: { duration: '1h' } }, { setWeight: 50 }] } })).status).toBe(201);
    await eventually(async () => (await rolloutState()).pauseUntil !== null); // settled in the timed pause
  });
  afterAll(async () => sluice?.stop());

  // What a page on another site can send without a CORS preflight, and a cross-site fetch.
  it.each<[string, Record<string, string>, string | undefined, number]>([
    ['a form post (urlencoded)', { 'content-type': 'application/x-www-form-urlencoded' }, 'full=true', 415],
    ['a text/plain post', { 'content-type': 'text/plain' }, '{"full": true}', 415],
    ['a multipart post', { 'content-type': 'multipart/form-data; boundary=x' }, '--x--', 415],
    ['a post with no body and no content type', {}, undefined, 415],
    ['JSON from another origin', { 'content-type': 'application/json', origin: 'https://evil.example' }, '{"full": true}', 403],
    ['JSON from another port of this host', { 'content-type': 'application/json', origin: 'http://127.0.0.1:1' }, '{"full": true}', 403],
    ['JSON from an opaque origin', { 'content-type': 'application/json', origin: 'null' }, '{"full": true}', 403],
  ])('refuses %s', async (_what, headers, body, status) => {
    const before = await rolloutState();
    const res = await call(port, 'POST', '/v1/rollouts/echo/promote', { headers, body });
    expect(res.status).toBe(status);
    expect(res.body.error.message).toMatch(status === 415 ? /needs a body with content-type: application\/json/ : /cross-origin request refused/);
    expect(await rolloutState()).toEqual(before);
  });

  it('refuses a cross-origin DELETE, and accepts same-origin JSON and callers that send no Origin', async () => {
    expect((await call(port, 'DELETE', '/v1/services/echo', { headers: { origin: 'https://evil.example' } })).status).toBe(403);
    const same = await call(port, 'POST', '/v1/rollouts/echo/pause', { body: {}, headers: { origin: `http://127.0.0.1:${port}` } });
    expect(same.status).toBe(200);
    const noOrigin = await call(port, 'POST', '/v1/rollouts/echo/resume', { body: {} });
    expect(noOrigin.status).toBe(200);
    expect(noOrigin.body.history.at(-1).by).toBe('api'); // `by` as before tokens existed
    const named = await call(port, 'POST', '/v1/rollouts/echo/pause', { body: {}, headers: { 'x-sluice-user': 'carol' } });
    expect(named.body.history.at(-1).by).toBe('carol');
  });

  /** fetch() will not send a Host of our choosing; node:http will. */
  const withHost = (host: string, token?: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v1/services', headers: { host, ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
    });

  it('answers only loopback names (a rebound DNS name reaches nothing)', async () => {
    expect(await withHost(`attacker.example:${port}`)).toBe(403);
    expect(await withHost('10.0.0.1')).toBe(403);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `app.localhost:${port}`, `[::1]:${port}`]) expect(await withHost(host), host).toBe(200);
  });
});

describe('with tokens', () => {
  it('still refuses cross-origin and non-JSON changes, even with a valid bearer token', async () => {
    const sluice = await startTestSluice({ apiTokens: roleTokensFile() });
    try {
      const port = sluice.httpPort;
      const put = (headers: Record<string, string>) => call(port, 'PUT', '/v1/services/echo', { token: TOKENS.admin, body: JSON.stringify(serviceOf({ v1: 1 })), headers });
      expect((await put({ 'content-type': 'application/json', origin: 'https://evil.example' })).status).toBe(403);
      expect((await put({ 'content-type': 'text/plain' })).status).toBe(415);
      expect((await put({ 'content-type': 'application/json' })).status).toBe(201);
      // Any Host is fine once tokens are required.
      const status = await new Promise<number>((resolve) =>
        http.get({ host: '127.0.0.1', port, path: '/v1/services', headers: { host: 'sluice.example', authorization: `Bearer ${TOKENS.viewer}` } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        }),
      );
      expect(status).toBe(200);
    } finally {
      await sluice.stop();
    }
  });
});

describe('start-up', () => {
  const logsOf = (host: string, withTokens = false) => {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const api = buildApi({
      log: pino({ level: 'info' }, sink),
      host,
      ready: () => ({ ready: true }),
      routes: [],
      ...(withTokens ? { tokens: { size: 3 } as never } : {}),
    });
    void api.close();
    return lines;
  };

  it('warns that the API is open when it listens beyond loopback without tokens', () => {
    const open = logsOf('0.0.0.0').find((l) => l.msg.startsWith('API is OPEN'));
    expect(open?.level).toBe(40); // warn
    expect(open?.msg).toContain('anyone who can reach this port can change routing');
    expect(logsOf('127.0.0.1').some((l) => l.msg.startsWith('API open to local processes'))).toBe(true);
    expect(logsOf('0.0.0.0', true).some((l) => /OPEN|open/.test(l.msg))).toBe(false);
  });
});
