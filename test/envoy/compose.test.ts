// The docker-compose demo, checked without a Docker engine: the compose file parses (Debian's
// docker-compose is a parser too), its parts agree with each other and with
// scripts/envoy-demo.sh, the script's REST calls are accepted by a real Sluice, and the
// programs the containers run (HTTP backend, load generator) do what the demo shows.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend } from '../../src/demo/http-backend.js';
import type { HttpBackend } from '../../src/demo/http-backend.js';
import { formatReport, startLoadgen } from '../../src/demo/loadgen.js';
import type { TestSluice } from '../support/sluice.js';
import { startTestSluice } from '../support/sluice.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const SCRIPT = path.join(ROOT, 'scripts/envoy-demo.sh');

interface ComposeService {
  image?: string;
  command?: string[];
  volumes?: string[];
  networks?: Record<string, { ipv4_address?: string } | null> | string[];
}
const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, ComposeService>;
  networks: Record<string, { ipam: { config: { subnet: string; ip_range?: string }[] } }>;
};
const script = fs.readFileSync(SCRIPT, 'utf8');

/** The value after `flag` in a command list. */
const flag = (command: string[] | undefined, name: string) => command?.[command.indexOf(name) + 1];
const scriptVar = (name: string) => new RegExp(`^${name}=(\\S+)$`, 'm').exec(script)?.[1];

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4ToInt(ip) / size) === Math.floor(ipv4ToInt(base) / size);
}

describe('docker-compose.yml', () => {
  const haveParser = fs.existsSync(DOCKER_COMPOSE);
  // In CI the parser must be there (scripts/install-test-deps.sh installs it); elsewhere a
  // missing one skips this test only.
  it.skipIf(!haveParser && !process.env.CI)(`is accepted by \`docker-compose config\`${haveParser ? '' : ` (skipped: ${DOCKER_COMPOSE} is not installed)`}`, async () => {
    const { stderr } = await run(DOCKER_COMPOSE, ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: ROOT });
    expect(stderr).toBe('');
  });

  it('runs an Envoy of 1.36 or later (WeightedCluster.use_hash_policy)', () => {
    const image = compose.services.envoy!.image!;
    const m = /^envoyproxy\/envoy:(?:[a-z-]*-)?v(\d+)\.(\d+)/.exec(image);
    expect(m, image).not.toBeNull();
    const [major, minor] = [Number(m![1]), Number(m![2])];
    expect(major > 1 || (major === 1 && minor >= 36), image).toBe(true);
  });

  it('mounts an existing bootstrap at the path Envoy reads, and names the node', () => {
    const envoy = compose.services.envoy!;
    const configPath = flag(envoy.command, '-c');
    const mount = envoy.volumes!.map((v) => v.split(':')).find(([, target]) => target === configPath);
    expect(mount, `a volume mounted at ${configPath}`).toBeDefined();
    expect(fs.existsSync(path.join(ROOT, mount![0]!)), mount![0]).toBe(true);
    expect(mount![0]).toMatch(/^\.\/envoy\/bootstrap-(ads|delta)\.yaml$/);
    expect(flag(envoy.command, '--service-node')).toBeTruthy();
    expect(flag(envoy.command, '--service-cluster')).toBeTruthy();
  });

  it('gives the backends the fixed addresses and port scripts/envoy-demo.sh declares', () => {
    const [subnet] = Object.values(compose.networks).flatMap((n) => n.ipam.config);
    for (const version of ['v1', 'v2']) {
      const backend = compose.services[`backend-${version}`]!;
      const address = (Object.values(backend.networks as Record<string, { ipv4_address?: string }>)[0] ?? {}).ipv4_address;
      expect(address, `backend-${version}`).toBe(scriptVar(`BACKEND_${version.toUpperCase()}`));
      expect(flag(backend.command, '--version')).toBe(version);
      expect(flag(backend.command, '--port')).toBe(scriptVar('BACKEND_PORT'));
      expect(inCidr(address!, subnet!.subnet), `${address} in ${subnet!.subnet}`).toBe(true);
      // Containers without a fixed address are given one from ip_range: never a backend's.
      if (subnet!.ip_range) expect(inCidr(address!, subnet!.ip_range), `${address} outside ${subnet!.ip_range}`).toBe(false);
    }
  });

  it('sends the load generator through Envoy', () => {
    expect(flag(compose.services.loadgen!.command, '--url')).toBe('http://envoy:10000/');
  });
});

describe.runIf(fs.existsSync('/usr/bin/curl'))('scripts/envoy-demo.sh against a real Sluice', () => {
  let sluice: TestSluice;
  const demo = (command: string) => run(SCRIPT, [command], { env: { ...process.env, SLUICE: `http://127.0.0.1:${sluice.httpPort}` } });

  beforeAll(async () => {
    sluice = await startTestSluice();
  });
  afterAll(async () => {
    await sluice?.stop();
  });

  it('declares the service and starts the rollout, then rolls it back', async () => {
    const { stdout } = await demo('all');
    expect(stdout).toContain('Watch it:');
    const service = (await sluice.api('GET', '/v1/services/web')).body;
    expect(service.versions.v2.endpoints).toEqual([{ address: scriptVar('BACKEND_V2'), port: 8000 }]);
    // The load generator's Host header must select this service's virtual host.
    expect(service.domains).toContain(flag(compose.services.loadgen!.command, '--host'));
    // A shadow phase first: every request copied to v2 (Envoy nodes), no user traffic on it yet.
    const rollout = (await sluice.api('GET', '/v1/rollouts/web')).body;
    expect(rollout.weights).toEqual({ v1: 100, v2: 0 });
    expect(rollout.mirrorPercent).toBe(100);
    expect(rollout.spec.steps.slice(0, 4).map((s: object) => Object.keys(s)[0])).toEqual(['setMirror', 'analysis', 'setMirror', 'setWeight']);

    expect(JSON.parse((await demo('status')).stdout).canary).toBe('v2');
    await demo('rollback');
    expect((await sluice.api('GET', '/v1/rollouts/web')).body.phase).toBe('RolledBack');
  });

  it('fails loudly when Sluice refuses a call', async () => {
    await demo('declare');
    await demo('rollout');
    await expect(demo('rollout')).rejects.toMatchObject({ code: 22 }); // 409: one active rollout per service
  });
});

describe('the demo programs', () => {
  const backends: HttpBackend[] = [];
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.stop()));
  });

  it('a backend answers its version in the body and the x-version header, failing at errorRate', async () => {
    const [good, bad] = await Promise.all([startHttpBackend({ version: 'v1' }), startHttpBackend({ version: 'v2', errorRate: 1, latencyMs: 20 })]);
    backends.push(good, bad);
    const ok = await fetch(`http://127.0.0.1:${good.port}/`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-version')).toBe('v1');
    expect(await ok.json()).toEqual({ version: 'v1' });
    const started = Date.now();
    const failed = await fetch(`http://127.0.0.1:${bad.port}/`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('x-version')).toBe('v2');
  });

  it('the load generator reports the share of answers per version, failures and unreachable targets', async () => {
    const backend = await startHttpBackend({ version: 'v2', errorRate: 0.5 });
    backends.push(backend);
    const lines: string[] = [];
    const loadgen = startLoadgen({ url: `http://127.0.0.1:${backend.port}/`, host: 'web', rps: 200, intervalMs: 300, write: (l) => lines.push(l) });
    await new Promise((r) => setTimeout(r, 700));
    await loadgen.stop();
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d  \d+ answers in \d+\.\ds  v2 100\.0% \(\d+ failed\)$/);

    const closed = await freePort();
    const unreachable = startLoadgen({ url: `http://127.0.0.1:${closed}/`, rps: 50, intervalMs: 60_000 });
    await new Promise((r) => setTimeout(r, 200));
    const tally = await unreachable.stop();
    expect(Object.keys(tally.unversioned)).toEqual(['ECONNREFUSED']);
  });

  it('a report line reads as the demo shows it', () => {
    const line = formatReport(
      { answers: 100, versions: { v2: { answers: 20, failed: 3 }, v1: { answers: 78, failed: 0 } }, unversioned: { '503': 2 } },
      5000,
      new Date('2026-11-26T12:00:05Z'),
    );
    expect(line).toBe('12:00:05  100 answers in 5.0s  v1 78.0%  v2 20.0% (3 failed)  no version 2.0% (503×2)');
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
