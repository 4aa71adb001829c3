// GET /openapi.json: a valid OpenAPI 3.1 document (checked by @readme/openapi-parser), with
// every route the server registered, and true to the server: the request bodies in README and
// docs/api.md validate against it, its examples validate against their own schemas, real
// answers validate against the response schemas, and bodies it refuses the server refuses.
import fs from 'node:fs';
import { dereference, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTE_ROLES } from '../../src/api/roles.js';
import { curlBodies } from './markdown-requests.js';
import type { TestSluice } from '../support/sluice.js';
import { startTestSluice } from '../support/sluice.js';

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const toOpenApiPath = (fastifyPath: string) => fastifyPath.replace(/:(\w+)/g, '{$1}');

/** The operation a concrete path and method reach. */
function operationFor(doc: Doc, method: string, path: string): any {
  for (const [template, item] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`);
    if (re.test(path) && item[method]) return item[method];
  }
  throw new Error(`no operation for ${method.toUpperCase()} ${path}`);
}

describe('OpenAPI document', () => {
  let sluice: TestSluice;
  let doc: Doc;
  let deref: Doc;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const compiled = new Map<unknown, ValidateFunction>();
  const validator = (schema: object) => {
    let v = compiled.get(schema);
    if (!v) compiled.set(schema, (v = ajv.compile(schema)));
    return v;
  };
  const check = (schema: object, value: unknown, what: string) => {
    const v = validator(schema);
    expect(v(value), `${what}: ${ajv.errorsText(v.errors)}`).toBe(true);
  };

  beforeAll(async () => {
    sluice = await startTestSluice();
    doc = (await sluice.api('GET', '/openapi.json')).body;
    deref = (await dereference(structuredClone(doc) as never)) as unknown as Doc;
  });
  afterAll(async () => sluice?.stop());

  it('is valid OpenAPI 3.1 (@readme/openapi-parser)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    await expect(validate(structuredClone(doc) as never)).resolves.toMatchObject({ valid: true });
  });

  it('has every registered route, and only those', () => {
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${p}`));
    // access.ts refuses to register a route missing from ROUTE_ROLES; each entry is registered.
    const registered = Object.keys(ROUTE_ROLES).filter((key) => {
      const [method, url] = key.split(' ') as [string, string];
      return sluice.http.hasRoute({ method: method as 'GET', url });
    });
    expect(registered).toHaveLength(Object.keys(ROUTE_ROLES).length);
    expect(documented.sort()).toEqual(registered.map((k) => k.replace(/ (.*)$/, (_, p: string) => ` ${toOpenApiPath(p)}`)).sort());
  });

  it('gives every operation an id, a summary, tags, security from the role table and its error answers', () => {
    const ids = new Set<string>();
    for (const [key, access] of Object.entries(ROUTE_ROLES)) {
      const [method, url] = key.split(' ') as [string, string];
      const op = doc.paths[toOpenApiPath(url)]![method.toLowerCase()];
      expect(op.operationId, key).toMatch(/^[a-z][A-Za-z]+$/);
      expect(ids.has(op.operationId), `${key}: duplicate operationId ${op.operationId}`).toBe(false);
      ids.add(op.operationId);
      expect(op.summary, key).toBeTruthy();
      expect(op.tags?.length, key).toBeGreaterThan(0);
      const codes = Object.keys(op.responses);
      for (const [code, r] of Object.entries<any>(op.responses)) expect(r.description, `${key} ${code}`).toBeTruthy();
      expect(codes.some((c) => c.startsWith('2')), key).toBe(true);
      if (access === 'public') expect(op.security, key).toEqual([]);
      else {
        expect(op.security, key).toEqual([{ bearer: [] }, { session: [] }]);
        expect(op.description, key).toContain(`**${access}** role`);
        expect(codes, key).toEqual(expect.arrayContaining(['401', '403']));
      }
      if (op.requestBody) {
        expect(Object.keys(op.requestBody.content), key).toEqual(['application/json', 'application/yaml']);
        expect(codes, key).toEqual(expect.arrayContaining(['400', '403', '413', '415']));
      }
      // Every error is an Error, but a probe's "not ready" answer (load balancers read its status).
      for (const code of codes.filter((c) => Number(c) >= 400 && key !== 'GET /readyz')) expect(op.responses[code].content['application/json'].schema, `${key} ${code}`).toEqual({ $ref: '#/components/schemas/Error' });
    }
    const rollback = doc.paths['/v1/rollouts/{service}/rollback']!.post;
    expect(Object.keys(rollback.responses)).toEqual(['200', '400', '401', '403', '404', '409', '413', '415', '503', '507']);
    expect(doc.paths['/v1/services/{service}']!.put.responses['201']).toBeTruthy();
  });

  it('keeps the "exactly one of" rules and the fields the server answers with', () => {
    const s = doc.components.schemas;
    expect(s.Step.oneOf).toEqual([{ required: ['setWeight'] }, { required: ['pause'] }, { required: ['analysis'] }]);
    expect(s.Matcher.allOf).toHaveLength(2);
    expect(s.Sticky.oneOf).toHaveLength(3);
    expect(s.AnalysisMetric.oneOf).toHaveLength(5);
    expect(s.ServiceView.required).toEqual(expect.arrayContaining(['name', 'status', 'versions', 'stable']));
    expect(Object.keys(s.Rollout.properties)).toEqual(expect.arrayContaining(['phase', 'step', 'weights', 'history', 'analysis', 'spec']));
    // The document says what the server says: a step with two kinds is refused by both.
    const spec = deref.components.schemas.RolloutSpec;
    check(spec, { service: 'echo', canary: 'v2', steps: [{ setWeight: 5 }] }, 'one kind');
    expect(validator(spec)({ service: 'echo', canary: 'v2', steps: [{ setWeight: 5, pause: {} }] })).toBe(false);
    expect(validator(spec)({ service: 'echo', canary: 'v2', steps: [{}] })).toBe(false);
    expect(validator(deref.components.schemas.Matcher)({ header: 'x', cookie: 'y', exact: '1' })).toBe(false);
  });

  it('has examples that validate against their own schemas', () => {
    let n = 0;
    for (const [p, item] of Object.entries(deref.paths))
      for (const m of METHODS.filter((x) => item[x])) {
        const op = item[m];
        for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {}))
          if (media.example !== undefined) check(media.schema, media.example, `${m} ${p} body ${type}`), n++;
        for (const [code, r] of Object.entries<any>(op.responses))
          for (const [type, media] of Object.entries<any>(r.content ?? {}))
            if (media.example !== undefined && type === 'application/json') check(media.schema, media.example, `${m} ${p} ${code}`), n++;
      }
    expect(n).toBeGreaterThan(40);
  });

  it('is the route table of docs/api.md: roles, operationIds and answers', () => {
    const api = fs.readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
    const rows = [...api.matchAll(/^\| `(GET|POST|PUT|DELETE) ([^`]+)` \| (\w+) \| (\w+) \| ([^|]+)\|$/gm)];
    expect(Object.fromEntries(rows.map((m) => [`${m[1]} ${m[2]}`, m[3]]))).toEqual(ROUTE_ROLES);
    for (const m of rows) {
      const op = doc.paths[toOpenApiPath(m[2]!)]![m[1]!.toLowerCase()];
      expect(m[4], `${m[1]} ${m[2]}`).toBe(op.operationId);
      // Every status the table names is documented (the table leaves out the common 401/403/413/415).
      for (const code of m[5]!.match(/\b[2-5]\d\d\b/g) ?? []) expect(Object.keys(op.responses), `${m[1]} ${m[2]}`).toContain(code);
    }
  });

  it('accepts every request body in README.md and docs/api.md', () => {
    for (const file of ['README.md', 'docs/api.md']) {
      const requests = curlBodies(fs.readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'));
      expect(requests.length, file).toBeGreaterThan(file === 'README.md' ? 2 : 8);
      for (const r of requests) {
        const op = operationFor(deref, r.method, r.path);
        check(op.requestBody.content['application/json'].schema, r.body, `${file}:${r.line} ${r.method.toUpperCase()} ${r.path}`);
      }
    }
  });

  it('describes the answers the server really gives', async () => {
    const answers: [string, string, unknown, number][] = [];
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await sluice.api(method, path, body);
      answers.push([method.toLowerCase(), path.split('?')[0]!, res.body, res.status]);
      return res;
    };
    const service = { versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 50051 }] }, v2: { endpoints: [{ address: '127.0.0.1', port: 50052 }] } }, stable: 'v1' };
    expect((await call('PUT', '/v1/services/docs', service)).status).toBe(201);
    expect((await call('PUT', '/v1/services/docs', service)).status).toBe(200);
    await call('GET', '/v1/services');
    await call('GET', '/v1/services/docs');
    const spec = { service: 'docs', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }], analysis: { interval: '1s', metrics: [{ name: 'ok', successRate: { min: 0.9 } }] } };
    expect((await call('POST', '/v1/rollouts', spec)).status).toBe(201);
    await call('GET', '/v1/rollouts');
    await call('GET', '/v1/rollouts/docs');
    await call('POST', '/v1/rollouts/docs/pause', {});
    await call('POST', '/v1/rollouts/docs/resume', {});
    expect((await call('POST', '/v1/rollouts/docs/rollback?wait=ack&timeout=1s', { reason: 'docs' })).status).toBe(200);
    await call('GET', '/v1/rollouts/docs/history');
    await call('GET', '/v1/rollouts/nope');
    await call('POST', '/v1/rollouts/docs/promote', { full: 'yes' });
    await call('GET', '/v1/fleet');
    await call('GET', '/v1/fleet?limit=10&offset=0&filter=x');
    await call('GET', '/v1/fleet/summary');
    await call('GET', '/v1/status');
    await call('GET', '/v1/session');
    await call('GET', '/healthz');
    await call('GET', '/readyz');
    for (const [method, path, body, status] of answers) {
      const op = operationFor(deref, method, path);
      const media = op.responses[String(status)]?.content?.['application/json'];
      expect(media, `${method} ${path} answered ${status}, which is not documented`).toBeTruthy();
      check(media.schema, body, `${method.toUpperCase()} ${path} ${status}`);
    }
  });
});
