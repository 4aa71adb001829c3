// YAML request bodies over raw HTTP: the same objects and validation as JSON, and bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestSluice } from '../support/sluice.js';
import { startTestSluice } from '../support/sluice.js';

describe('YAML request bodies', () => {
  let sluice: TestSluice;
  const send = async (method: string, path: string, body: string, contentType = 'application/yaml') => {
    const res = await fetch(`http://127.0.0.1:${sluice.httpPort}${path}`, { method, headers: { 'content-type': contentType }, body });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    sluice = await startTestSluice();
  });
  afterAll(async () => sluice?.stop());

  it('PUT and POST accept application/yaml, application/x-yaml and text/yaml as JSON would be', async () => {
    const service = `# the same service as JSON
versions:
  v1:
    endpoints:
      - address: 127.0.0.1   # a string, as in JSON
        port: 50051
  v2:
    endpoints: [ { address: "::1", port: 50052, weight: 2 } ]
stable: v1
timeout: 2s
`;
    const put = await send('PUT', '/v1/services/echo', service);
    expect(put.status).toBe(201);
    const json = await sluice.api('PUT', '/v1/services/echo-json', {
      versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 50051 }] }, v2: { endpoints: [{ address: '::1', port: 50052, weight: 2 }] } },
      stable: 'v1',
      timeout: '2s',
    });
    expect({ ...put.body, name: 'x' }).toEqual({ ...json.body, name: 'x' });
    expect((await send('PUT', '/v1/services/echo', service, 'application/x-yaml')).status).toBe(200);
    expect((await send('PUT', '/v1/services/echo', service, 'text/yaml; charset=utf-8')).status).toBe(200);

    const rollout = await send('POST', '/v1/rollouts', 'service: echo\ncanary: v2\nsteps:\n  - setWeight: 10\n  - pause: {}\nheaderRoutes:\n  - name: testers\n    match: [ { header: x-canary, exact: "true" } ]\n');
    expect(rollout.status).toBe(201);
    expect(rollout.body.spec.headerRoutes[0].match[0]).toEqual({ header: 'x-canary', exact: 'true' });
    expect((await send('POST', '/v1/rollouts/echo/rollback', 'reason: from yaml\n')).body.history.at(-1).reason).toBe('from yaml');
  });

  it('validates YAML bodies like JSON: 400 naming the field', async () => {
    const bad = await send('PUT', '/v1/services/bad', 'versions:\n  v1:\n    endpoints: [ { address: db.local, port: 70000 } ]\nstable: v1\n');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field)).toEqual(['versions.v1.endpoints[0].address', 'versions.v1.endpoints[0].port']);
    // YAML's own types do not sneak in: `yes` is a string, `0x10` a number, as the core schema says.
    const typed = await send('POST', '/v1/rollouts/echo/promote', 'full: yes\n');
    expect(typed.status).toBe(400);
    expect(typed.body.error.details[0].field).toBe('full');
  });

  it('refuses malformed YAML, several documents, unknown tags and aliases with a 400', async () => {
    const cases: [string, RegExp][] = [
      ['versions: [1\n', /^body: malformed YAML at line 2, column 1: /],
      ['a: 1\na: 2\n', /^body: malformed YAML at line \d, column \d+: duplicated mapping key/],
      ['a: 1\n---\nb: 2\n', /^body: one YAML document per request/],
      ['a: !!binary aGVsbG8=\n', /^body: malformed YAML .*unknown tag/],
      ['['.repeat(10_000), /^body: malformed YAML .*nesting exceeded maxDepth/],
      ['stable: &s v1\nversions: { v1: &e { endpoints: [] }, v2: *e }\n', /^body: YAML aliases to mappings or sequences are not accepted/],
    ];
    for (const [body, message] of cases) {
      const r = await send('PUT', '/v1/services/x', body);
      expect(r.status, body.slice(0, 40)).toBe(400);
      expect(r.body.error.code).toBe('invalid_argument');
      expect(r.body.error.message, body.slice(0, 40)).toMatch(message);
    }
  });

  it('refuses an alias bomb with a 400 at once, and stays responsive', async () => {
    // "Billion laughs": 9 levels of 9 aliases each, about 387 million strings once expanded.
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const r = await send('POST', '/v1/rollouts', levels.join('\n') + '\n');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/aliases to mappings or sequences are not accepted/);
    expect((await sluice.api('GET', '/healthz')).status).toBe(200);
  });

  it('bounds the size of a YAML body (413 past 1 MiB)', async () => {
    const big = 'stable: v1\nversions: {}\n' + '# padding\n'.repeat(110_000);
    const r = await send('PUT', '/v1/services/big', big);
    expect(r.status).toBe(413);
  });
});
