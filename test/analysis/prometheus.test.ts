// The Prometheus provider against a real Prometheus (Debian's package) scraping a real
// /metrics endpoint that this test serves.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analyzer } from '../../src/analysis/analyzer.js';
import { queryPrometheus } from '../../src/analysis/prometheus.js';
import { RolloutSpecSchema } from '../../src/model/rollout.js';
import { createRollout } from '../../src/rollout/machine.js';
import { WindowedStats } from '../../src/telemetry/window.js';
import { freePort } from '../support/process.js';
import { eventually, tempDir } from '../support/sluice.js';

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
    await expect(query('demo_success_ratio{version="v9"}')).rejects.toThrow('query returned no series');
    await expect(query('demo_success_ratio')).rejects.toThrow('query returned 2 series; aggregate them to one');
    await expect(query('demo_success_ratio[1m]')).rejects.toThrow(/query gave a matrix/);
    await expect(query('sum(')).rejects.toThrow(/^prometheus bad_data: /);
    await expect(queryPrometheus(`http://127.0.0.1:${await freePort()}`, 'up', { at: new Date(), timeoutMs: 2000 })).rejects.toThrow(/fetch failed|ECONNREFUSED/);
  });

  it('judges analysis metrics, with the rollout’s names filled into the query', async () => {
    const spec = RolloutSpecSchema.parse({
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 10 }],
      analysis: {
        interval: '5s',
        metrics: [
          { name: 'ok', prometheus: { address, query: 'demo_success_ratio{version="{{canary}}"}', min: 0.95 } },
          { name: 'strict', prometheus: { address, query: 'demo_success_ratio{version="{{canary}}"}', min: 0.99 } },
          { name: 'vs-stable', prometheus: { address, query: 'demo_success_ratio{version="{{stable}}"} - on() demo_success_ratio{version="{{canary}}"}', max: 0.05 } },
          { name: 'missing', prometheus: { address, query: 'nope{service="{{service}}"}', max: 1 } },
        ],
      },
    });
    const state = createRollout('r', spec, 'v1', new Date(Date.now() - 10_000), 'test');
    const analyzer = new Analyzer({ windows: new WindowedStats(), telemetrySince: 0, reportLagMs: 1000, clusterOf: (s, v) => `${s}-${v}` });
    const m = await analyzer.measure(state, 'background', spec.analysis!, new Date());
    expect(m.metrics.map((r) => [r.name, r.phase, r.value])).toEqual([
      ['ok', 'Successful', 0.97],
      ['strict', 'Failed', 0.97],
      ['vs-stable', 'Successful', 0.029],
      ['missing', 'Inconclusive', null],
    ]);
    expect(m.metrics[3]!.message).toBe('query failed: query returned no series (no data in the window?)');
    expect(m.phase).toBe('Failed');
  });
});
