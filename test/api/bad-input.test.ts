// Bad input: every field of every body gets a 4xx naming the field; nothing stored, nothing pushed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '../../src/xds/protos.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';

const good = {
  versions: {
    v1: { endpoints: [{ address: '127.0.0.1', port: 50051 }] },
    v2: { endpoints: [{ address: '::1', port: 50052, weight: 2 }] },
  },
  stable: 'v1',
};
const clone = <T>(v: T): T => structuredClone(v);
const withService = (mutate: (s: any) => void) => {
  const s = clone(good) as any;
  mutate(s);
  return s;
};

const badServices: [string, unknown, string][] = [
  ['unknown top-level field', { ...good, colour: 'blue' }, 'colour'],
  ['missing versions', { stable: 'v1' }, 'versions'],
  ['versions not an object', { ...good, versions: [] }, 'versions'],
  ['no versions', { ...good, versions: {} }, 'versions'],
  ['bad version name', withService((s) => (s.versions['v 1'] = s.versions.v1)), 'versions.v 1'],
  ['unknown version field', withService((s) => (s.versions.v1.color = 1)), 'versions.v1.color'],
  ['empty endpoint list', withService((s) => (s.versions.v1.endpoints = [])), 'versions.v1.endpoints'],
  ['hostname address', withService((s) => (s.versions.v1.endpoints[0].address = 'backend.local')), 'versions.v1.endpoints[0].address'],
  ['port 0', withService((s) => (s.versions.v1.endpoints[0].port = 0)), 'versions.v1.endpoints[0].port'],
  ['port 65536', withService((s) => (s.versions.v1.endpoints[0].port = 65536)), 'versions.v1.endpoints[0].port'],
  ['port as string', withService((s) => (s.versions.v1.endpoints[0].port = '80')), 'versions.v1.endpoints[0].port'],
  ['fractional port', withService((s) => (s.versions.v1.endpoints[0].port = 80.5)), 'versions.v1.endpoints[0].port'],
  ['weight 0', withService((s) => (s.versions.v2.endpoints[0].weight = 0)), 'versions.v2.endpoints[0].weight'],
  ['unknown endpoint field', withService((s) => (s.versions.v1.endpoints[0].zone = 'a')), 'versions.v1.endpoints[0].zone'],
  ['bad protocol', withService((s) => (s.versions.v1.protocol = 'http3')), 'versions.v1.protocol'],
  ['bad cluster name', withService((s) => (s.versions.v1.cluster = '../x')), 'versions.v1.cluster'],
  ['stable not a version', { ...good, stable: 'v9' }, 'stable'],
  ['missing stable', { versions: good.versions }, 'stable'],
  ['domains empty', { ...good, domains: [] }, 'domains'],
  ['domain with a space', { ...good, domains: ['a b'] }, 'domains[0]'],
  ['duplicate domains', { ...good, domains: ['x', 'x'] }, 'domains'],
];

describe('bad input', () => {
  let sluice: TestSluice;
  let routesBefore: unknown;

  beforeAll(async () => {
    sluice = await startTestSluice();
    expect((await sluice.api('PUT', '/v1/services/echo', good)).status).toBe(201);
    await sluice.api('PUT', '/v1/services/other', { ...good, domains: ['other.example.com'] });
    await new Promise((r) => setTimeout(r, 100)); // let the debounced publish land
    routesBefore = sluice.xds.cache.resources('grpc', TypeUrl.RouteConfiguration);
  });
  afterAll(async () => sluice?.stop());

  const unchanged = async () => {
    expect((await sluice.api('GET', '/v1/services/echo')).body).toEqual({ name: 'echo', ...good, status: { published: true } });
    await new Promise((r) => setTimeout(r, 30));
    expect(sluice.xds.cache.resources('grpc', TypeUrl.RouteConfiguration)).toBe(routesBefore);
  };

  it.each(badServices)('PUT /v1/services: %s → 400 naming %s', async (_what, body, field) => {
    const res = await sluice.api('PUT', '/v1/services/echo', body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_argument');
    expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    await unchanged();
  });

  it('malformed JSON, a non-object body and a wrong content type are rejected', async () => {
    const malformed = await sluice.api('PUT', '/v1/services/echo', '{"versions":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toMatch(/JSON/);
    expect((await sluice.api('PUT', '/v1/services/echo', [1, 2])).status).toBe(400);
    const text = await fetch(`http://127.0.0.1:${sluice.httpPort}/v1/services/echo`, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(text.status).toBe(415);
    await unchanged();
  });

  it('a bad service name in the path is 400 naming path.service', async () => {
    const res = await sluice.api('PUT', '/v1/services/bad%20name', good);
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].field).toBe('path.service');
  });

  it('a domain another service uses is 409 naming domains', async () => {
    const res = await sluice.api('PUT', '/v1/services/echo', { ...good, domains: ['other.example.com'] });
    expect(res.status).toBe(409);
    expect(res.body.error.details[0].field).toBe('domains');
    await unchanged();
  });

  const rollout = { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] };
  const badRollouts: [string, unknown, string, number][] = [
    ['unknown field', { ...rollout, speed: 'fast' }, 'speed', 400],
    ['missing steps', { service: 'echo', canary: 'v2' }, 'steps', 400],
    ['empty steps', { ...rollout, steps: [] }, 'steps', 400],
    ['weight 101', { ...rollout, steps: [{ setWeight: 101 }] }, 'steps[0].setWeight', 400],
    ['negative weight', { ...rollout, steps: [{ setWeight: -1 }] }, 'steps[0].setWeight', 400],
    ['step with two actions', { ...rollout, steps: [{ setWeight: 5, pause: {} }] }, 'steps[0]', 400],
    ['empty step', { ...rollout, steps: [{}] }, 'steps[0]', 400],
    ['bad duration', { ...rollout, steps: [{ pause: { duration: '5 minutes' } }] }, 'steps[0].pause.duration', 400],
    ['unknown pause field', { ...rollout, steps: [{ pause: { until: 'x' } }] }, 'steps[0].pause.until', 400],
    ['header route without matchers', { ...rollout, headerRoutes: [{ name: 'a', match: [] }] }, 'headerRoutes[0].match', 400],
    ['matcher with two values', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', exact: 'a', prefix: 'b' }] }] }, 'headerRoutes[0].match[0]', 400],
    ['matcher on nothing', { ...rollout, headerRoutes: [{ name: 'a', match: [{ exact: 'a' }] }] }, 'headerRoutes[0].match[0]', 400],
    ['bad regex', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', regex: '(' }] }] }, 'headerRoutes[0].match[0].regex', 400],
    ['lookahead regex (not RE2)', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', regex: '(?=a)' }] }] }, 'headerRoutes[0].match[0].regex', 400],
    ['\\Z in a regex (JavaScript yes, RE2 no)', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', regex: 'a\\Z' }] }] }, 'headerRoutes[0].match[0].regex', 400],
    ['repeat over 1000 (RE2 limit)', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', regex: 'a{1001}' }] }] }, 'headerRoutes[0].match[0].regex', 400],
    ['inline flag (RE2 yes, JavaScript no)', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', regex: '(?i)beta' }] }] }, 'headerRoutes[0].match[0].regex', 400],
    ['inverted query matcher', { ...rollout, headerRoutes: [{ name: 'a', match: [{ query: 'q', exact: '1', invert: true }] }] }, 'headerRoutes[0].match[0].invert', 400],
    ['duplicate route names', { ...rollout, headerRoutes: [{ name: 'a', match: [{ header: 'x', present: true }] }, { name: 'a', match: [{ header: 'y', present: true }] }] }, 'headerRoutes[1].name', 400],
    ['sticky on both', { ...rollout, sticky: { header: 'x-user', cookie: 'u' } }, 'sticky', 400],
    ['canary not a version', { ...rollout, canary: 'v7' }, 'canary', 400],
    ['canary is stable', { ...rollout, canary: 'v1' }, 'canary', 400],
    ['unknown service', { ...rollout, service: 'nope' }, 'service', 404],
  ];

  it.each(badRollouts)('POST /v1/rollouts: %s → 4xx naming %s', async (_what, body, field, status) => {
    const res = await sluice.api('POST', '/v1/rollouts', body);
    expect(res.status).toBe(status);
    if (status === 400) expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect((await sluice.api('GET', '/v1/rollouts')).body.rollouts).toEqual([]);
    await unchanged();
  });

  it('actions: bad bodies are 400, unknown rollouts 404, illegal transitions 409', async () => {
    expect((await sluice.api('POST', '/v1/rollouts/echo/promote', {})).status).toBe(404);
    expect((await sluice.api('POST', '/v1/rollouts', rollout)).status).toBe(201);
    const bad = await sluice.api('POST', '/v1/rollouts/echo/promote', { full: 'yes' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe('full');
    expect((await sluice.api('POST', '/v1/rollouts/echo/pause', { now: true })).status).toBe(400);
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback', { reason: 42 })).status).toBe(400);
    const badWait = await sluice.api('POST', '/v1/rollouts/echo/rollback?wait=forever', {});
    expect(badWait.status).toBe(400);
    expect(badWait.body.error.details[0].field).toBe('query.wait');
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=1y', {})).status).toBe(400);
    // No node is connected, so the fleet has trivially ACKed the weight and the pause holds.
    await eventually(async () => (await sluice.api('GET', '/v1/rollouts/echo')).body.phase === 'Paused');
    // Services in an active rollout are protected.
    expect((await sluice.api('DELETE', '/v1/services/echo')).status).toBe(409);
    const dropCanary = await sluice.api('PUT', '/v1/services/echo', { ...good, versions: { v1: good.versions.v1 } });
    expect(dropCanary.status).toBe(409);
    expect(dropCanary.body.error.details[0].field).toBe('versions.v2');
    expect((await sluice.api('POST', '/v1/rollouts', rollout)).status).toBe(409);
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback', {})).status).toBe(200);
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback', {})).status).toBe(409);
    expect((await sluice.api('POST', '/v1/rollouts/echo/promote', { full: true })).status).toBe(409);
  });

  it('requires the bearer token when one is set (health stays open; roles: roles.test.ts)', async () => {
    const secured = await startTestSluice({ apiToken: 's3cret' });
    try {
      expect((await secured.api('GET', '/v1/services')).status).toBe(401);
      expect((await secured.api('GET', '/v1/services', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
      expect((await secured.api('GET', '/v1/services', undefined, { authorization: 'Bearer s3cret' })).status).toBe(200);
      expect((await secured.api('GET', '/healthz')).status).toBe(200);
      expect((await secured.api('GET', '/readyz')).status).toBe(200);
    } finally {
      await secured.stop();
    }
  });
});

describe('dashboard', () => {
  it('serves the page at / without a token; its data calls still need one', async () => {
    const sluice = await startTestSluice({ apiToken: 'tok' });
    try {
      const res = await fetch(`http://127.0.0.1:${sluice.httpPort}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      const html = await res.text();
      for (const part of ['id="rollouts"', 'id="nodes"', 'src="/assets/uPlot.iife.min.js"', 'src="/assets/dashboard.js"']) expect(html).toContain(part);
      const script = await fetch(`http://127.0.0.1:${sluice.httpPort}/assets/dashboard.js`);
      expect(script.headers.get('content-type')).toMatch(/javascript/);
      expect(await script.text()).toContain("new EventSource('/v1/events')");
      expect((await fetch(`http://127.0.0.1:${sluice.httpPort}/assets/nope.js`)).status).toBe(404);
      expect((await sluice.api('GET', '/v1/events')).status).toBe(401);
    } finally {
      await sluice.stop();
    }
  });
});
