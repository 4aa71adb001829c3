// The CLI as users and scripts meet it: real CLI processes against a real server.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import jsYaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/process.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice, tempDir } from '../support/sluice.js';
import { exitOf, sluiceCli, spawnBin, spawnCli } from './run-cli.js';

const SERVICE = {
  versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 1 }] }, v2: { endpoints: [{ address: '127.0.0.1', port: 2 }] } },
  stable: 'v1',
};

// Each test runs several CLI processes (about a second each, more on a busy machine).
describe('sluice CLI against a real server', { timeout: 180_000 }, () => {
  let sluice: TestSluice;
  let dir: string;
  let server: string;
  const cli = (...args: string[]) => sluiceCli([...args, '--server', server, '--token', 't0k']);
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    expect(r, `sluice ${args.join(' ')}: ${r.stderr}`).toMatchObject({ code: 0 });
    return r.stdout;
  };

  beforeAll(async () => {
    sluice = await startTestSluice({ apiToken: 't0k' });
    server = `http://127.0.0.1:${sluice.httpPort}`;
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'svc.json'), JSON.stringify(SERVICE));
    fs.writeFileSync(
      path.join(dir, 'rollout.yaml'),
      'kind: Rollout\nspec:\n  service: echo\n  canary: v2\n  steps:\n    - setWeight: 30\n    - pause: {}\n    - setWeight: 60\n    - pause: { duration: 1h }\n',
    );
  });
  afterAll(async () => sluice?.stop());

  it('services: put (bare JSON body), list, get, in table, json and yaml', async () => {
    expect(await ok('services', 'put', 'echo', '-f', path.join(dir, 'svc.json'))).toBe('service/echo created\n');
    expect(await ok('services', 'put', 'echo', '-f', path.join(dir, 'svc.json'))).toBe('service/echo configured\n');
    const table = (await ok('services', 'list')).split('\n');
    expect(table[0]).toMatch(/^NAME\s+STABLE\s+VERSIONS\s+ENDPOINTS$/);
    expect(table[1]).toMatch(/^echo\s+v1\s+v1,v2\s+2$/);
    expect(await ok('services', 'list', '-o', 'wide')).toMatch(/DOMAINS\s+TIMEOUT\s+RETRIES\necho\s+v1\s+v1,v2\s+2\s+echo,echo:\*\s+-\s+-/);
    expect(JSON.parse(await ok('services', 'list', '-o', 'json'))).toEqual({ services: [{ name: 'echo', ...SERVICE, status: { published: true } }] });
    expect(jsYaml.load(await ok('services', 'get', 'echo', '-o', 'yaml'))).toEqual({ name: 'echo', ...SERVICE, status: { published: true } });
    const detail = await ok('services', 'get', 'echo');
    expect(detail).toContain('Service:  echo');
    expect(detail).toMatch(/v1 \(stable\)\s+127\.0\.0\.1:1\s+echo-v1/);
    // Options before the command work too (program-level), and the nearest one wins.
    const before = await sluiceCli(['-o', 'json', '--server', server, '--token', 't0k', 'services', 'get', 'echo']);
    expect(JSON.parse(before.stdout).name).toBe('echo');
    const nearest = await sluiceCli(['-o', 'json', '--server', server, '--token', 't0k', 'services', 'get', 'echo', '-o', 'yaml']);
    expect(nearest.stdout).toMatch(/^name: echo$/m);
  });

  it('rollout: create (YAML document), status, list, pause, resume, promote, rollback --wait', async () => {
    expect(await ok('rollout', 'create', '-f', path.join(dir, 'rollout.yaml'))).toBe('rollout/echo created (v1 → v2): Progressing, step 1/4, v1 70%, v2 30%\n');
    await eventually(async () => (await sluice.api('GET', '/v1/rollouts/echo', undefined, { authorization: 'Bearer t0k' })).body.phase === 'Paused');
    const status = await ok('rollout', 'status', 'echo');
    expect(status).toMatch(/Rollout:\s+echo\s+v1 → v2\s+Paused \(step\)/);
    expect(status).toMatch(/✓ 1\. setWeight 30%\n\s+▶ 2\. pause \(until promoted\)\n\s+3\. setWeight 60%/);
    expect(status).toContain('paused until promoted: sluice rollout promote echo');
    expect(status).toContain('Fleet:    no xDS nodes connected');
    expect(JSON.parse(await ok('rollout', 'status', 'echo', '-o', 'json'))).toMatchObject({ service: 'echo', phase: 'Paused', step: 1 });
    expect(status).toMatch(/4\. pause 1h/);
    expect((await ok('rollout', 'list')).split('\n')[1]).toMatch(/^echo\s+v1\s+v2\s+Paused \(step\)\s+2\/4\s+v1 70%, v2 30%/);
    expect(await ok('rollout', 'promote', 'echo')).toMatch(/^rollout\/echo promoted: Progressing, step 3\/4, v1 40%, v2 60%/);
    await eventually(async () => (await sluice.api('GET', '/v1/rollouts/echo', undefined, { authorization: 'Bearer t0k' })).body.pauseUntil);
    expect(await ok('rollout', 'status', 'echo')).toMatch(/Now:\s+timed pause until \S+ \(\d+m\d*s? left\)/);
    expect(await ok('rollout', 'pause', 'echo')).toMatch(/^rollout\/echo paused: Paused \(user\), step 4\/4, v1 40%, v2 60%/);
    expect(await ok('rollout', 'resume', 'echo')).toMatch(/^rollout\/echo resumed: Progressing, step 4\/4/);
    const rb = await ok('rollout', 'rollback', 'echo', '--reason', 'cli test', '--wait', '--timeout', '2s');
    expect(rb).toBe('rollout/echo rolled back: v1 100%, v2 0%\nfleet: no xDS nodes connected, nothing to wait for\n');
    const state = JSON.parse(await ok('rollout', 'status', 'echo', '-o', 'json'));
    expect(state.history.at(-1)).toMatchObject({ event: 'RolledBack', reason: 'cli test', by: expect.stringMatching(/^admin \(for cli:/) });
    expect((await cli('rollout', 'rollback', 'echo')).stderr).toBe('error: 409 conflict: cannot roll back a rollout that is RolledBack\n');
    await ok('rollout', 'create', '-f', path.join(dir, 'rollout.yaml'));
    const json = JSON.parse(await ok('rollout', 'rollback', 'echo', '--wait', '-o', 'json'));
    expect(json.fleet).toMatchObject({ acknowledged: true, nodes: [] });
  });

  it('fleet: an empty fleet in every format', async () => {
    expect(await ok('fleet')).toBe('No xDS nodes connected.\n');
    expect(JSON.parse(await ok('fleet', '-o', 'json'))).toMatchObject({ nodes: [] });
    expect(jsYaml.load(await ok('fleet', '-o', 'yaml'))).toMatchObject({ nodes: [] });
  });

  it('takes the server and token from SLUICE_SERVER and SLUICE_API_TOKEN', async () => {
    const r = await sluiceCli(['services', 'list', '-o', 'json'], { env: { SLUICE_SERVER: server, SLUICE_API_TOKEN: 't0k' } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).services[0].name).toBe('echo');
  });

  it('reads a body from stdin with -f -', async () => {
    const r = await sluiceCli(['services', 'put', 'stdin-svc', '-f', '-', '--server', server, '--token', 't0k'], { input: 'kind: Service\nname: stdin-svc\nspec: ' + JSON.stringify(SERVICE) });
    expect(r).toMatchObject({ code: 0, stdout: 'service/stdin-svc created\n' });
    expect(await ok('services', 'delete', 'stdin-svc')).toBe('service/stdin-svc deleted\n');
    expect((await cli('services', 'get', 'stdin-svc')).code).toBe(2);
  });

  describe('exit codes', () => {
    it('2: the server refused, with its message and every field at fault', async () => {
      fs.writeFileSync(path.join(dir, 'bad-svc.json'), JSON.stringify({ versions: { v1: { endpoints: [{ address: 'db.local', port: 70000 }] } }, stable: 'v1' }));
      const bad = await cli('services', 'put', 'bad', '-f', path.join(dir, 'bad-svc.json'));
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^error: 400 invalid_argument: /);
      expect(bad.stderr).toMatch(/\n {2}versions\.v1\.endpoints\[0\]\.address: must be an IPv4 or IPv6 address/);
      expect(bad.stderr).toMatch(/\n {2}versions\.v1\.endpoints\[0\]\.port: /);
      const missing = await cli('rollout', 'promote', 'nope');
      expect(missing).toMatchObject({ code: 2, stdout: '' });
      expect(missing.stderr).toBe('error: 404 not_found: no rollout for service "nope"\n');
      const unauth = await sluiceCli(['fleet', '--server', server, '--token', 'wrong']);
      expect(unauth.code).toBe(2);
      expect(unauth.stderr).toContain('401 unauthenticated: wrong bearer token');
      expect(unauth.stderr).toContain('--token or SLUICE_API_TOKEN');
    });

    it('1: usage errors, before anything is sent', async () => {
      const cases: [string[], RegExp][] = [
        [['rollout', 'statu', 'echo'], /unknown command 'statu'/],
        [['rollout', 'create'], /required option '-f, --file <file>' not specified/],
        [['services', 'list', '-o', 'xml'], /argument 'xml' is invalid/],
        [['services', 'list', '--bogus'], /unknown option '--bogus'/],
        [['fleet', '--server', 'ftp://x'], /only http:\/\/ and https:\/\//],
        [['fleet', '--server', 'not a url'], /not a URL/],
        [['fleet', '--request-timeout', 'soon'], /--request-timeout: invalid duration "soon"/],
        [['rollout', 'rollback', 'echo', '--timeout', '5s'], /--timeout goes with --wait/],
        [['rollout', 'create', '-f', '/no/such/file.yaml'], /no such file or directory/],
        [['services', 'put', '-f', path.join(dir, 'svc.json')], /NAME is required/],
      ];
      const results = await Promise.all(cases.map(([args]) => sluiceCli(args)));
      cases.forEach(([args, message], i) => {
        expect(results[i]!.code, args.join(' ')).toBe(1);
        expect(results[i]!.stderr, args.join(' ')).toMatch(message);
      });
    });

    it('4: unreachable, with the URL and the cause', async () => {
      const closed = await freePort();
      const refused = await sluiceCli(['fleet', '--server', `http://127.0.0.1:${closed}`]);
      expect(refused.code).toBe(4);
      expect(refused.stderr).toBe(`error: cannot reach http://127.0.0.1:${closed}/v1/fleet: connection refused (is Sluice running and listening there?)\n`);
      // https:// to a plain HTTP server: the TLS handshake fails.
      const tls = await sluiceCli(['fleet', '--server', `https://127.0.0.1:${sluice.httpPort}`]);
      expect(tls.code).toBe(4);
      expect(tls.stderr).toMatch(/cannot reach https:\/\/127\.0\.0\.1:\d+\/v1\/fleet: TLS failed/);
      // A server that accepts the connection and never answers.
      const silent = net.createServer(() => {});
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const sockets = new Set<net.Socket>();
      silent.on('connection', (s) => sockets.add(s));
      try {
        const port = (silent.address() as net.AddressInfo).port;
        const timeout = await sluiceCli(['fleet', '--server', `http://127.0.0.1:${port}`, '--request-timeout', '1s']);
        expect(timeout.code).toBe(4);
        expect(timeout.stderr).toContain(`cannot reach http://127.0.0.1:${port}/v1/fleet: no answer within 1s (timeout`);
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });
  });

  it('keeps a path prefix of --server (Sluice behind a reverse proxy under /sluice)', async () => {
    const seen: string[] = [];
    const proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (!req.url?.startsWith('/sluice/')) {
        res.writeHead(404).end('not under /sluice');
        return;
      }
      const upstream = http.request({ host: '127.0.0.1', port: sluice.httpPort, path: req.url.slice('/sluice'.length), method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}/sluice/`;
      const r = await sluiceCli(['services', 'get', 'echo', '-o', 'json', '--server', base, '--token', 't0k']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).name).toBe('echo');
      const put = await sluiceCli(['services', 'put', 'echo', '-f', path.join(dir, 'svc.json'), '--server', base, '--token', 't0k']);
      expect(put).toMatchObject({ code: 0, stdout: 'service/echo configured\n' });
      expect(seen).toEqual(['GET /sluice/v1/services/echo', 'PUT /sluice/v1/services/echo']);
    } finally {
      proxy.close();
    }
  });
});

describe('sluice --help and --version', { timeout: 180_000 }, () => {
  it('prints the version from package.json', async () => {
    const { version } = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) expect(await sluiceCli([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('has --help on every command and subcommand, with the exit codes on client commands', async () => {
    const commands = [
      'serve', 'demo', 'demo-backend', 'loadgen', 'services', 'services list', 'services get', 'services put', 'services delete',
      'rollout', 'rollout create', 'rollout list', 'rollout status', 'rollout promote', 'rollout pause', 'rollout resume', 'rollout rollback',
      'fleet', 'apply',
    ];
    const top = await sluiceCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Exit codes:');
    for (const c of commands.filter((c) => !c.includes(' '))) expect(top.stdout).toMatch(new RegExp(`\\n  ${c} `));
    const results = await Promise.all(commands.map(async (c) => [c, await sluiceCli([...c.split(' '), '--help'])] as const));
    for (const [c, r] of results) {
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toMatch(new RegExp(`^Usage: sluice ${c} `));
      if (/^(services|rollout) \w|^fleet|^apply/.test(c)) expect(r.stdout, c).toMatch(/Exit codes:[\s\S]*\n {2}3 {4}rollback --wait[\s\S]*\n {2}4 {4}server unreachable/);
    }
    expect(results.find(([c]) => c === 'serve')![1].stdout).toMatch(/--xds-port <value>[\s\S]*--webhook-format <value>[\s\S]*node bin\/sluice\.js serve/);
  });
});

describe('serve, demo-backend and loadgen commands', { timeout: 180_000 }, () => {
  it('serve, started as the container does (node bin/sluice.js serve), stops cleanly on SIGTERM', async () => {
    const [httpPort, xdsPort] = [await freePort(), await freePort()];
    const dataDir = tempDir();
    // bin/sluice.js runs dist/ (built by `npm ci`); the same command line from source otherwise.
    const built = fs.existsSync('dist/src/cli/main.js');
    const args = ['serve', '--http-port', String(httpPort), '--xds-port', String(xdsPort), '--data-dir', dataDir, '--log-level', 'warn'];
    const server = built ? spawnBin(args) : spawnCli(args);
    const exited = exitOf(server);
    await eventually(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok, 20_000);
    server.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(server.errors()).toContain('SIGTERM: shutting down');
    // It let go of its ports: nothing answers any more.
    await expect(fetch(`http://127.0.0.1:${httpPort}/healthz`)).rejects.toThrow();
  });

  it('demo-backend and loadgen serve and measure a version over HTTP, and stop cleanly on SIGTERM', async () => {
    const port = await freePort();
    const backend = spawnCli(['demo-backend', '--version', 'v9', '--port', String(port)]);
    await eventually(() => backend.errors().includes('demo backend v9'));
    const gen = spawnCli(['loadgen', '--url', `http://127.0.0.1:${port}/`, '--rps', '50', '--interval', '1s', '--header', 'x-test: 1']);
    await eventually(() => /v9 100\.0%/.test(gen.output()), 20_000);
    expect(gen.output()).toMatch(/answers/);
    const exits = [exitOf(gen), exitOf(backend)];
    gen.kill('SIGTERM');
    backend.kill('SIGTERM');
    expect((await Promise.all(exits)).map((e) => e.code)).toEqual([0, 0]);
  });

  it('demo explains what to install when its dev dependency is missing', async () => {
    const { checkDemoDependency } = await import('../../src/cli/server-commands.js');
    expect(() => checkDemoDependency('@grpc/grpc-js-xds')).not.toThrow();
    expect(() => checkDemoDependency('@grpc/no-such-package')).toThrow(/needs @grpc\/no-such-package, a development dependency[\s\S]*npm ci && npm run demo/);
  });
});
