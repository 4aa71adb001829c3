// Cross-check of the load generator against real clients: K real @grpc/grpc-js-xds processes and
// K simulated nodes of each generator mode (grpc-js, batch) follow the same service through a
// rollout, a weight step, a rollback, the next rollout, and the archive of a rolled-back rollout
// (the one change that drops a cluster from the route). The server counts the requests each
// node sends per type; the generator's grpc-js mode is right when its counts per phase equal the
// real clients'. Backends are real (loopback), so the real clients' calls succeed.
//   node dist/bench/crosscheck.js [K=20]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ConfigSchema } from '../src/config.js';
import { startBackend } from '../src/demo/backend.js';
import type { XdsClient } from '../src/demo/xds-client.js';
import { spawnXdsClient } from '../src/demo/xds-client.js';
import { startSluice } from '../src/main.js';
import { TypeUrl } from '../src/xds/protos.js';
import type { StreamSpec } from './generator.js';
import { Child } from './ipc.js';
import { rest } from './rest.js';

const K = Number(process.argv[2] ?? 20);
const SERVICE = 'xcheck';
const TYPES = [['LDS', TypeUrl.Listener], ['RDS', TypeUrl.RouteConfiguration], ['CDS', TypeUrl.Cluster], ['EDS', TypeUrl.ClusterLoadAssignment]] as const;
const GROUPS = ['real', 'gen-grpc-js', 'gen-batch'] as const;
type Group = (typeof GROUPS)[number];

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-xcheck-'));
const sluice = await startSluice(ConfigSchema.parse({ xdsPort: 0, httpPort: 0, dataDir, logLevel: 'silent' }), pino({ level: 'silent' }));
const [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);

const api = (method: string, url: string, body?: unknown) => rest(sluice, method, url, body);

const groupOf = (id: string): Group => (id.startsWith('real-') ? 'real' : id.startsWith('gen-js-') ? 'gen-grpc-js' : 'gen-batch');

/** Requests per node and type as the server counted them, and whether everything is ACKed. */
function snapshot(): { counts: Map<string, number[]>; synced: boolean } {
  const counts = new Map<string, number[]>();
  let synced = true;
  for (const n of sluice.xds.fleet()) {
    counts.set(n.id, TYPES.map(([, t]) => n.types[t]?.requests ?? 0));
    for (const [, t] of TYPES) if (n.types[t] && n.types[t]!.ackedVersion !== n.types[t]!.sentVersion) synced = false;
  }
  return { counts, synced };
}

/** Waits until every node ACKed what it was sent and nobody sent anything for 500 ms. */
async function settle(): Promise<Map<string, number[]>> {
  let last = '';
  let since = Date.now();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { counts, synced } = snapshot();
    const key = JSON.stringify([...counts]);
    if (key !== last) [last, since] = [key, Date.now()];
    if ((synced && Date.now() - since >= 500) || Date.now() > deadline) return counts;
    await new Promise((r) => setTimeout(r, 50));
  }
}

await api('PUT', `/v1/services/${SERVICE}`, {
  versions: { v1: { endpoints: [{ address: '127.0.0.1', port: v1.port }] }, v2: { endpoints: [{ address: '127.0.0.1', port: v2.port }] } },
  stable: 'v1',
});

const real: XdsClient[] = await Promise.all(Array.from({ length: K }, (_, i) => spawnXdsClient({ nodeId: `real-${i}`, xdsPort: sluice.xdsPort })));
for (const c of real)
  for (let tries = 0; ; tries++) {
    const r = await c.call(SERVICE, 1);
    if (r.versions.v1 === 1) break;
    if (tries > 100) throw new Error(`${c.nodeId} never reached ${SERVICE}`);
    await new Promise((res) => setTimeout(res, 100));
  }

const gen = Child.start('generator', 'generator.js');
await new Promise<void>((resolve) => gen.on('ready', () => resolve()));
const specs = (prefix: string, resubscribe: StreamSpec['resubscribe']): StreamSpec[] =>
  Array.from({ length: K }, (_, i) => ({ nodeId: `${prefix}${i}`, flavour: 'grpc', targets: [SERVICE], resubscribe }));
await gen.call('open', { tag: 'x', port: sluice.xdsPort, perConn: 100, specs: [...specs('gen-js-', 'grpc-js'), ...specs('gen-batch-', 'batch')], batch: 2 * K, timeoutMs: 60_000 });

const rollout = async () => {
  await api('POST', '/v1/rollouts', { service: SERVICE, canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 20 }, { pause: {} }] });
  for (let i = 0; i < 600 && (await api('GET', `/v1/rollouts/${SERVICE}`)).phase !== 'Paused'; i++) await new Promise((r) => setTimeout(r, 50));
};
const phases: { name: string; run: () => Promise<unknown> }[] = [
  { name: 'first rollout (10%)', run: rollout },
  { name: 'weight step (promote to 20%)', run: () => api('POST', `/v1/rollouts/${SERVICE}/promote`, {}) },
  { name: 'rollback', run: () => api('POST', `/v1/rollouts/${SERVICE}/rollback`, { reason: 'crosscheck' }) },
  { name: 'next rollout (10%)', run: rollout },
  { name: 'rollback again', run: () => api('POST', `/v1/rollouts/${SERVICE}/rollback`, { reason: 'crosscheck' }) },
  { name: 'archive (canary leaves the route)', run: () => api('DELETE', `/v1/rollouts/${SERVICE}`) },
];

interface Row {
  phase: string;
  /** Per group: the per-type request counts most nodes sent ("LDS/RDS/CDS/EDS"), and how many nodes sent exactly that. */
  groups: Record<Group, { counts: string; nodes: number; of: number }>;
  match: boolean;
}
const rows: Row[] = [];
let before = await settle();
for (const phase of phases) {
  await phase.run();
  const after = await settle();
  const byGroup = new Map<Group, Map<string, number>>(GROUPS.map((g) => [g, new Map()]));
  for (const [id, counts] of after) {
    const was = before.get(id) ?? [0, 0, 0, 0];
    const key = counts.map((c, i) => c - was[i]!).join('/');
    const tally = byGroup.get(groupOf(id))!;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  const groups = Object.fromEntries(
    GROUPS.map((g) => {
      const tally = [...byGroup.get(g)!].sort((a, b) => b[1] - a[1]);
      return [g, { counts: tally[0]?.[0] ?? '-', nodes: tally[0]?.[1] ?? 0, of: tally.reduce((n, [, k]) => n + k, 0) }];
    }),
  ) as Row['groups'];
  rows.push({ phase: phase.name, groups, match: groups.real.counts === groups['gen-grpc-js'].counts });
  before = after;
}

await gen.stop();
await Promise.all(real.map((c) => c.stop()));
await Promise.all([v1.stop(), v2.stop()]);
await sluice.stop();
fs.rmSync(dataDir, { recursive: true, force: true });
console.log(`BENCH ${JSON.stringify({ scenario: 'crosscheck', clients: K, types: TYPES.map(([n]) => n).join('/'), rows, allMatch: rows.every((r) => r.match) })}`);
process.exit(0);
