// The Prometheus provider against a real Prometheus (Debian's package) scraping a real
// /metrics endpoint that this test serves; its bounds (size, time, fixed-form errors) against
// endpoints that misbehave; and rollouts naming a provider the server does not have.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analyzer } from '../../src/analysis/analyzer.js';
import { PrometheusProviders, queryPrometheus } from '../../src/analysis/prometheus.js';
import { RolloutSpecSchema } from '../../src/model/rollout.js';
import { createRollout } from '../../src/rollout/machine.js';
import { WindowedStats } from '../../src/telemetry/window.js';
import { freePort } from '../support/process.js';
import { eventually, serviceOf, startTestSluice, tempDir } from '../support/sluice.js';

const PROMETHEUS = '/usr/bin/prometheus';
// In CI a missing Prometheus is a failure (scripts/install-test-deps.sh installs it), not a skip.
const available = fs.existsSync(PROMETHEUS) || !!process.env.CI;

describe.runIf(available)('Prometheus provider against a real Prometheus', () => {
  let target: http.Server;
  let prometheus: ChildProcess;
  let address: string;
  let stderr = '';
  const query = (q: string) => queryPrometheus(address, q, { at: new Date(), timeoutMs: 5000 });

  beforeAll(async () => {
    target = http.createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end(
        [
          '# HELP demo_success_ratio Share of successful requests.',
          '# TYPE demo_success_ratio gauge',
          'demo_success_ratio{version="v1"} 0.999',
          'demo_success_ratio{version="v2"} 0.97',
          '',
        ].join('\n'),
      );
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const dir = tempDir('sluice-prometheus-');
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: demo',
        '    static_configs:',
        `      - targets: ["127.0.0.1:${(target.address() as AddressInfo).port}"]`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    address = `http://127.0.0.1:${port}`;
    prometheus = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    prometheus.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    // Ready once the first scrape of the target is stored.
    await eventually(async () => {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
      return (await query('up{job="demo"}')) === 1;
    }, 20_000, 200);
  }, 30_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await new Promise((r) => target?.close(r));
  });

  it('reads one series of an instant vector, or a scalar', async () => {
    expect(await query('demo_success_ratio{version="v2"}')).toBe(0.97);
    expect(await query('scalar(demo_success_ratio{version="v1"})')).toBe(0.999);
    expect(await query('min(demo_success_ratio)')).toBe(0.97);
    expect(await query('scalar(demo_success_ratio{version="v1"}) / 0')).toBe(Infinity);
    expect(await query('vector(0) / 0')).toBeNaN();
  });

  it('says what to change when the answer is not one number', async () => {
    await expect(query('demo_success_ratio{version="v9"}')).rejects.toThrow('not a single value: the query returned no series');
    await expect(query('demo_success_ratio')).rejects.toThrow('not a single value: the query returned 2 series; aggregate them to one');
    await expect(query('demo_success_ratio[1m]')).rejects.toThrow(/the query gave a matrix/);
    // Prometheus' own error text is not repeated (it comes from the answer), only its kind.
    await expect(query('sum(')).rejects.toThrow(/^prometheus refused the query \(bad_data; HTTP 400\)$/);
    await expect(queryPrometheus(`http://127.0.0.1:${await freePort()}`, 'up', { at: new Date(), timeoutMs: 2000 })).rejects.toThrow('connection failed (ECONNREFUSED)');
  });

  it('judges analysis metrics, with the rollout’s names filled into the query', async () => {
    const spec = RolloutSpecSchema.parse({
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 10 }],
      analysis: {
        interval: '5s',
        metrics: [
          { name: 'ok', prometheus: { provider: 'main', query: 'demo_success_ratio{version="{{canary}}"}', min: 0.95 } },
          { name: 'strict', prometheus: { provider: 'main', query: 'demo_success_ratio{version="{{canary}}"}', min: 0.99 } },
          { name: 'vs-stable', prometheus: { provider: 'main', query: 'demo_success_ratio{version="{{stable}}"} - on() demo_success_ratio{version="{{canary}}"}', max: 0.05 } },
          { name: 'missing', prometheus: { provider: 'main', query: 'nope{service="{{service}}"}', max: 1 } },
          { name: 'elsewhere', prometheus: { provider: 'gone', query: 'up', max: 1 } },
        ],
      },
    });
    const state = createRollout('r', spec, 'v1', new Date(Date.now() - 10_000), 'test');
    const analyzer = new Analyzer({
      windows: new WindowedStats(),
      telemetrySince: 0,
      reportLagMs: 1000,
      clusterOf: (s, v) => `${s}-${v}`,
      prometheus: new PrometheusProviders({ main: address }),
    });
    const m = await analyzer.measure(state, 'background', spec.analysis!, new Date());
    expect(m.metrics.map((r) => [r.name, r.phase, r.value])).toEqual([
      ['ok', 'Successful', 0.97],
      ['strict', 'Failed', 0.97],
      ['vs-stable', 'Successful', 0.029],
      ['missing', 'Inconclusive', null],
      ['elsewhere', 'Inconclusive', null],
    ]);
    expect(m.metrics[3]!.message).toBe('query failed: not a single value: the query returned no series (no data in the window?)');
    // A stored rollout whose provider was since removed from the server's configuration.
    expect(m.metrics[4]!.message).toBe('query failed: provider "gone" is not configured on this server');
    expect(m.phase).toBe('Failed');
  });
});

describe('Prometheus answers that misbehave', () => {
  const SECRET = 'internal-secret-7d2c';
  let server: http.Server;
  let base: string;
  let hang: http.ServerResponse[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const kind = req.url!.split('/')[1];
      const json = (body: unknown, status = 200) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (kind === 'huge') {
        // Announces nothing, streams 2 MiB of a valid-looking answer.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"status":"success","data":{"resultType":"vector","result":[');
        for (let i = 0; i < 2048; i++) res.write(`{"metric":{"x":"${'a'.repeat(1000)}"},"value":[1,"1"]},`);
        return void res.end('{"metric":{},"value":[1,"1"]}]}}');
      }
      if (kind === 'announced') return void res.writeHead(200, { 'content-length': String(5 * 1024 * 1024) }).end();
      if (kind === 'html') return void res.writeHead(500, { 'content-type': 'text/html' }).end(`<h1>${SECRET}</h1>`);
      if (kind === 'text200') return void res.writeHead(200).end(SECRET);
      if (kind === 'error') return json({ status: 'error', errorType: 'bad_data', error: SECRET }, 400);
      if (kind === 'odd-error') return json({ status: 'error', errorType: SECRET, error: SECRET }, 422);
      if (kind === 'string') return json({ status: 'success', data: { resultType: 'string', result: [1, SECRET] } });
      if (kind === 'not-a-number') return json({ status: 'success', data: { resultType: 'scalar', result: [1, SECRET] } });
      if (kind === 'redirect') return void res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end();
      if (kind === 'slow') return void hang.push(res);
      json({ status: 'success', data: { resultType: 'scalar', result: [1, '0.5'] } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const res of hang) res.destroy();
    hang = [];
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const ask = (kind: string, timeoutMs = 5000) => queryPrometheus(`${base}/${kind}`, 'up', { at: new Date(), timeoutMs });
  const message = async (kind: string, timeoutMs?: number) => {
    try {
      await ask(kind, timeoutMs);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error(`${kind}: no error`);
  };

  it('reads a good answer', async () => {
    expect(await ask('ok')).toBe(0.5);
  });

  it.each([
    ['huge', /^response larger than 1048576 bytes$/],
    ['announced', /^response larger than 1048576 bytes$/],
    ['html', /^HTTP 500$/],
    ['text200', /^answer is not Prometheus JSON$/],
    ['error', /^prometheus refused the query \(bad_data; HTTP 400\)$/],
    ['odd-error', /^HTTP 422$/],
    ['string', /^not a single value: the query gave a string/],
    ['not-a-number', /^not a single value: the sample is not a number$/],
    ['redirect', /^HTTP 302$/],
  ])('%s: a fixed-form error that repeats nothing of the answer', async (kind, expected) => {
    const text = await message(kind);
    expect(text).toMatch(expected);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(base); // nor where the provider is
  });

  it('gives up after the time limit', async () => {
    expect(await message('slow', 300)).toBe('no answer in 300 ms');
  });
});

describe('rollouts and the providers configured on the server', () => {
  it('refuses a provider the server does not have, naming the field; accepts one it has', async () => {
    const sluice = await startTestSluice({ prometheus: { main: 'http://127.0.0.1:9' } });
    try {
      expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 1, v2: 2 }))).status).toBe(201);
      const metric = (provider: string) => ({ name: 'errors', prometheus: { provider, query: 'up', max: 1 } });
      const spec = (provider: string) => ({
        service: 'echo',
        canary: 'v2',
        steps: [{ setWeight: 10 }, { analysis: { interval: '10s', metrics: [metric(provider)] } }],
        analysis: { interval: '10s', metrics: [{ name: 'ok', successRate: { min: 0.9 } }, metric(provider)] },
      });
      const refused = await sluice.api('POST', '/v1/rollouts', spec('other'));
      expect(refused.status).toBe(400);
      expect(refused.body.error.details.map((d: { field: string }) => d.field)).toEqual(['analysis.metrics[1].prometheus.provider', 'steps[1].analysis.metrics[0].prometheus.provider']);
      expect(refused.body.error.message).toContain('provider "other" is not configured on this server (configured: main)');
      expect(refused.body.error.message).not.toContain('127.0.0.1:9');
      const old = await sluice.api('POST', '/v1/rollouts', { ...spec('main'), analysis: { interval: '10s', metrics: [{ name: 'x', prometheus: { address: 'http://169.254.169.254/', query: 'up', max: 1 } }] } });
      expect(old.status).toBe(400);
      expect(old.body.error.details[0]).toMatchObject({ field: 'analysis.metrics[0].prometheus.address' });
      expect(old.body.error.details[0].message).toContain('--prometheus NAME=URL');
      expect((await sluice.api('POST', '/v1/rollouts', spec('main'))).status).toBe(201);
    } finally {
      await sluice.stop();
    }
  });

  it('tells a server without providers how to configure one', async () => {
    const sluice = await startTestSluice();
    try {
      await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 1, v2: 2 }));
      const res = await sluice.api('POST', '/v1/rollouts', {
        service: 'echo',
        canary: 'v2',
        steps: [{ setWeight: 10 }],
        analysis: { interval: '10s', metrics: [{ name: 'x', prometheus: { provider: 'main', query: 'up', max: 1 } }] },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain('none is: start it with --prometheus NAME=URL');
    } finally {
      await sluice.stop();
    }
  });
});
