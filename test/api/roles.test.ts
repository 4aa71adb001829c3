// Each role against each route, over real HTTP: 401 without or with a wrong token, 403 (naming
// the role needed) when the role is too low, through otherwise. And the route table is complete,
// applied, and the one README quotes.
import fs from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { allows, ROUTE_ROLES } from '../../src/api/roles.js';
import type { Access, Role } from '../../src/api/roles.js';
import type { TestSluice } from '../support/sluice.js';
import { serviceOf, startTestSluice } from '../support/sluice.js';
import { call, roleTokensFile, TOKENS } from './access-fixtures.js';

type Caller = 'nobody' | 'wrong token' | Role;
const CALLERS: Caller[] = ['nobody', 'wrong token', 'viewer', 'operator', 'admin'];

/** What `caller` must get from a route that needs `need`. */
function expected(need: Access, caller: Caller): 'through' | 401 | 403 {
  if (need === 'public') return 'through';
  if (caller === 'nobody' || caller === 'wrong token') return 401;
  return allows(caller, need) ? 'through' : 403;
}

const tokenOf = (caller: Caller) => (caller === 'nobody' ? undefined : caller === 'wrong token' ? 'not-a-token' : TOKENS[caller]);

// Requests that reach each handler without changing anything: a service that does not exist,
// bodies that do not validate.
const cases = Object.entries(ROUTE_ROLES).flatMap(([key, need]) => {
  const [method, pattern] = key.split(' ') as [string, string];
  const path = pattern.replace(':service', 'ghost');
  return CALLERS.map((caller) => ({ key, method, path, need, caller, want: expected(need, caller) }));
});

describe('roles against routes', () => {
  let sluice: TestSluice;

  beforeAll(async () => {
    sluice = await startTestSluice({ apiTokens: roleTokensFile() });
    expect((await call(sluice.httpPort, 'PUT', '/v1/services/echo', { token: TOKENS.admin, body: serviceOf({ v1: 1, v2: 2 }) })).status).toBe(201);
  });
  afterAll(async () => sluice?.stop());

  it.each(cases)('$key as $caller → $want', async ({ method, path, need, caller, want }) => {
    const res = await call(sluice.httpPort, method, path, {
      token: tokenOf(caller),
      body: method === 'POST' || method === 'PUT' ? {} : undefined,
    });
    if (want === 'through') expect([401, 403]).not.toContain(res.status);
    else expect(res.status).toBe(want);
    if (want === 403) {
      expect(res.body.error.code).toBe('permission_denied');
      expect(res.body.error.message).toContain(`needs the ${need} role`);
    }
    if (want === 401) expect(res.body.error.code).toBe('unauthenticated');
  });

  it('lets each role do what it may, for real', async () => {
    const port = sluice.httpPort;
    const rollout = { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] };
    expect((await call(port, 'POST', '/v1/rollouts', { token: TOKENS.viewer, body: rollout })).status).toBe(403);
    expect((await call(port, 'POST', '/v1/rollouts', { token: TOKENS.operator, body: rollout })).status).toBe(201);
    expect((await call(port, 'GET', '/v1/rollouts/echo', { token: TOKENS.viewer })).body.phase).toBe('Progressing');
    expect((await call(port, 'POST', '/v1/rollouts/echo/rollback', { token: TOKENS.operator, body: {} })).body.phase).toBe('RolledBack');
    expect((await call(port, 'DELETE', '/v1/rollouts/echo', { token: TOKENS.operator })).status).toBe(204);
    expect((await call(port, 'DELETE', '/v1/services/echo', { token: TOKENS.operator })).status).toBe(403);
    expect((await call(port, 'PUT', '/v1/services/other', { token: TOKENS.operator, body: serviceOf({ v1: 3 }) })).status).toBe(403);
    expect((await call(port, 'PUT', '/v1/services/other', { token: TOKENS.admin, body: serviceOf({ v1: 3 }) })).status).toBe(201);
  });

  it('has every registered route in the table, and nothing else', () => {
    for (const key of Object.keys(ROUTE_ROLES)) {
      const [method, url] = key.split(' ') as [string, string];
      expect(sluice.http.hasRoute({ method: method as 'GET', url }), key).toBe(true);
    }
  });

  it('refuses to register a route the table does not know', async () => {
    const api = buildApi({
      log: pino({ level: 'silent' }),
      host: '127.0.0.1',
      ready: () => ({ ready: true }),
      routes: [(app) => app.get('/v1/secrets', async () => ({}))],
    });
    await expect(api.ready()).rejects.toThrow('route GET /v1/secrets has no entry in ROUTE_ROLES');
  });

  it('is the table README quotes', () => {
    const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Securing Sluice'));
    const rows = [...section.matchAll(/^\| `(GET|POST|PUT|DELETE) ([^`]+)` \| (\w+)/gm)].map((m) => [`${m[1]} ${m[2]}`, m[3]]);
    expect(Object.fromEntries(rows)).toEqual(ROUTE_ROLES);
  });
});

describe('GET /metrics', () => {
  const servers: TestSluice[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('needs a viewer token when tokens are configured', async () => {
    const s = await startTestSluice({ apiTokens: roleTokensFile() });
    servers.push(s);
    expect((await call(s.httpPort, 'GET', '/metrics')).status).toBe(401);
    expect((await call(s.httpPort, 'GET', '/metrics', { token: 'nope' })).status).toBe(401);
    const ok = await call(s.httpPort, 'GET', '/metrics', { token: TOKENS.viewer });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('sluice_xds_connected_nodes');
  });

  it('is open with --metrics-public, and without tokens', async () => {
    const pub = await startTestSluice({ apiTokens: roleTokensFile(), metricsPublic: true });
    const open = await startTestSluice();
    servers.push(pub, open);
    expect((await call(pub.httpPort, 'GET', '/metrics')).status).toBe(200);
    expect((await call(pub.httpPort, 'GET', '/v1/services')).status).toBe(401); // only /metrics
    expect((await call(open.httpPort, 'GET', '/metrics')).status).toBe(200);
  });
});
