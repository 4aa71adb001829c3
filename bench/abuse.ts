// REST latency while xDS clients keep hitting the input limits. A real `sluice serve` process;
// one generator process opens ADS streams that each send something the limits refuse (too many
// names, oversized node metadata, an unknown type URL), reopening as soon as the server ends
// them; meanwhile this process times GET /v1/services and a rollout's rollback (REST call →
// answer). Printed: latency quiet vs under abuse, and refusals per second by kind.
//   node dist/bench/abuse.js [seconds=10] [parallel streams=50]
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { messageType, TypeUrl } from '../src/xds/protos.js';
import { dist } from './stats.js';

const SECONDS = Number(process.argv[2] ?? 10);
const PARALLEL = Number(process.argv[3] ?? 50);
const here = path.dirname(fileURLToPath(import.meta.url));

type Kind = 'names' | 'metadata' | 'type';

/** Child: keeps PARALLEL streams busy sending refused requests; reports counts on exit. */
async function generate(port: number): Promise<void> {
  const request = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const encode = (o: object) => Buffer.from(request.encode(request.fromObject(o)).finish());
  const names = Array.from({ length: 10_001 }, (_, i) => `c${i}`);
  const bodies: Record<Kind, Buffer> = {
    names: encode({ node: { id: 'abuser' }, type_url: TypeUrl.Cluster, resource_names: names }),
    metadata: encode({ node: { id: 'abuser', metadata: { fields: { blob: { stringValue: 'x'.repeat(100_000) } } } }, type_url: TypeUrl.Cluster }),
    type: encode({ node: { id: 'abuser' }, type_url: 'type.googleapis.com/not.a.Type' }),
  };
  const refused: Record<Kind, number> = { names: 0, metadata: 0, type: 0 };
  const clients = Array.from({ length: Math.max(1, Math.ceil(PARALLEL / 25)) }, () => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const kinds: Kind[] = ['names', 'metadata', 'type'];
  let stop = false;
  process.on('message', () => {
    stop = true;
  });
  const loop = async (i: number) => {
    const kind = kinds[i % kinds.length]!;
    const client = clients[i % clients.length]!;
    while (!stop) {
      await new Promise<void>((resolve) => {
        const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => b);
        call.on('data', () => undefined);
        call.on('error', () => undefined);
        call.on('status', (s: grpc.StatusObject) => {
          if (s.code !== grpc.status.OK) refused[kind]++;
          resolve();
        });
        call.write(bodies[kind]);
      });
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, (_, i) => loop(i)));
  process.send!(refused, () => process.exit(0));
}

async function http(port: number, method: string, url: string, body?: unknown): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t0 };
}

async function measure(port: number, ms: number): Promise<{ get: number[]; rollback: number[] }> {
  const get: number[] = [];
  const rollback: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    get.push((await http(port, 'GET', '/v1/services')).ms);
    if (get.length % 20 === 0) {
      await http(port, 'POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] });
      rollback.push((await http(port, 'POST', '/v1/rollouts/echo/rollback', {})).ms);
    }
  }
  return { get, rollback };
}

const stat = (xs: number[]) => {
  const d = dist(xs);
  return { n: d.n, p50: d.p50, p99: d.p99, max: d.max };
};

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-abuse-'));
  const [httpPort, xdsPort] = [18500 + Math.floor(Math.random() * 500), 19500 + Math.floor(Math.random() * 500)];
  const server = spawn(process.execPath, [path.join(here, '../src/cli/main.js'), 'serve', '--http-port', String(httpPort), '--xds-port', String(xdsPort), '--data-dir', dir, '--log-level', 'error'], { stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await http(httpPort, 'GET', '/readyz')).status === 200) break;
      } catch {
        if (i > 200) throw new Error('server did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await http(httpPort, 'PUT', '/v1/services/echo', {
      versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 1 }] }, v2: { endpoints: [{ address: '127.0.0.1', port: 2 }] } },
      stable: 'v1',
    });
    const quiet = await measure(httpPort, SECONDS * 1000);
    const child = fork(fileURLToPath(import.meta.url), ['--generate', String(xdsPort)], { stdio: 'inherit' });
    const counts = new Promise<Record<Kind, number>>((resolve) => child.once('message', (m) => resolve(m as Record<Kind, number>)));
    await new Promise((r) => setTimeout(r, 1000)); // let the abuse reach full speed
    const t0 = Date.now();
    const abused = await measure(httpPort, SECONDS * 1000);
    const elapsed = (Date.now() - t0 + 1000) / 1000;
    child.send('stop');
    const refused = await counts;
    const result = {
      scenario: 'abuse',
      parallelStreams: PARALLEL,
      seconds: SECONDS,
      quiet: { get: stat(quiet.get), rollback: stat(quiet.rollback) },
      abused: { get: stat(abused.get), rollback: stat(abused.rollback) },
      refusedPerSecond: Object.fromEntries(Object.entries(refused).map(([k, v]) => [k, Math.round(v / elapsed)])),
    };
    console.log('BENCH ' + JSON.stringify(result));
  } finally {
    server.kill('SIGKILL');
  }
}

if (process.argv[2] === '--generate') await generate(Number(process.argv[3]));
else await main();
