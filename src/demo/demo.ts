// `sluice demo`: a whole gray release on one machine, no Docker. Starts Sluice, two versions of
// a gRPC service and a few proxyless gRPC client processes making steady calls, runs a rollout
// through its steps and a manual rollback, then a second rollout whose canary starts failing
// and is rolled back by analysis; prints the weights next to the traffic each version received,
// and which version a few signed-in users (sticky by bucket) reach at each weight.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ConfigSchema } from '../config.js';
import { startSluice } from '../main.js';
import type { Sluice } from '../main.js';
import type { RolloutState } from '../model/rollout.js';
import type { Backend } from './backend.js';
import { startBackend } from './backend.js';
import { userBucket } from './user-bucket.js';
import type { XdsClient } from './xds-client.js';
import { spawnXdsClient } from './xds-client.js';

export interface DemoOptions {
  clients: number;
  /** Keep serving after the scripted rollout (Ctrl-C to stop). */
  keepRunning: boolean;
  xdsPort: number;
  httpPort: number;
}

const tty = process.stdout.isTTY;
const paint = (code: number, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = (s: string) => paint(1, s);
const dim = (s: string) => paint(2, s);

/** Counts answers per version from all clients, in a window that the printer drains. */
class Traffic {
  private counts: Record<string, number> = {};
  private failures = 0;
  private running = true;

  start(clients: XdsClient[]): Promise<void[]> {
    return Promise.all(
      clients.map(async (c) => {
        while (this.running) {
          // A client process that is gone (Ctrl-C reaches the whole process group) ends its loop.
          const r = await c.call('echo', 10, { deadlineMs: 1000 }).catch(() => undefined);
          if (!r) return;
          for (const [v, n] of Object.entries(r.versions)) this.counts[v] = (this.counts[v] ?? 0) + n;
          this.failures += Object.values(r.errors).reduce((a, b) => a + b, 0);
          // Back off only when nothing answers (no route yet), not when a canary fails some calls.
          if (Object.keys(r.versions).length === 0) await new Promise((res) => setTimeout(res, 100));
        }
      }),
    );
  }

  drain(): { counts: Record<string, number>; failures: number } {
    const out = { counts: this.counts, failures: this.failures };
    this.counts = {};
    this.failures = 0;
    return out;
  }

  stop(): void {
    this.running = false;
  }
}

const BUCKET_HEADER = 'x-user-bucket';

/**
 * Simulated signed-in users: each call carries the bucket of its user id in BUCKET_HEADER
 * (computed as docs/sticky.md says), so a user keeps one version while the canary weight rises.
 */
class StickyUsers {
  private readonly rows: { weight: number; versions: string[] }[] = [];

  constructor(private readonly client: XdsClient, private readonly users: readonly string[]) {}

  get lastWeight(): number | undefined {
    return this.rows.at(-1)?.weight;
  }

  /** Three calls per user; prints which version each user reached. */
  async sample(weight: number, label = `at ${weight}%`): Promise<void> {
    const versions = await Promise.all(
      this.users.map(async (u) => {
        const r = await this.client.call('echo', 3, { metadata: { [BUCKET_HEADER]: String(userBucket(u)) }, deadlineMs: 1000 }).catch(() => undefined);
        return r ? Object.keys(r.versions).sort().join('+') || '—' : '—';
      }),
    );
    this.rows.push({ weight, versions });
    const cells = this.users.map((u, i) => `${u}(${userBucket(u)}) ${versions[i] === 'v2' ? bold('v2') : versions[i]}`);
    console.log(`  users ${label.padEnd(14)} ${cells.join('  ')}`);
  }

  /** Users who were on the canary at one weight and not at a later one (none, by design). */
  movedBack(): string[] {
    return this.users.filter((_, i) => this.rows.some((r, j) => r.versions[i] === 'v2' && this.rows.slice(j + 1).some((later) => later.versions[i] !== 'v2')));
  }
}

function bar(share: number, width = 30): string {
  const n = Math.round(share * width);
  return '█'.repeat(n) + dim('·'.repeat(width - n));
}

function line(r: RolloutState | undefined, stable: string, canary: string, t: { counts: Record<string, number>; failures: number }): string {
  const total = Object.values(t.counts).reduce((a, b) => a + b, 0);
  const share = (v: string) => (total ? (t.counts[v] ?? 0) / total : 0);
  const w = r?.weights ?? { [stable]: 100 };
  const phase = r ? `${r.phase.padEnd(11)} step ${String(r.step).padStart(1)}` : 'no rollout        ';
  return (
    `${new Date().toISOString().slice(11, 19)}  ${phase}  ` +
    `weights ${stable} ${String(w[stable] ?? 0).padStart(3)}% / ${canary} ${String(w[canary] ?? 0).padStart(3)}%   ` +
    `measured ${canary} ${(share(canary) * 100).toFixed(1).padStart(5)}% ${bar(share(canary))} ` +
    dim(`(${total} calls${t.failures ? `, ${t.failures} failed` : ''})`)
  );
}

function printHistory(r: RolloutState): void {
  console.log(bold('\nhistory:'));
  for (const h of r.history)
    console.log(dim(`  ${h.at.slice(11, 23)} ${h.event.padEnd(14)} ${JSON.stringify(h.weights)} by ${h.by}: ${h.reason}`));
}

export async function runDemo(opts: DemoOptions): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-demo-'));
  // Load reports every second, so analysis can judge a canary within seconds.
  const config = ConfigSchema.parse({ xdsPort: opts.xdsPort, httpPort: opts.httpPort, dataDir, logLevel: 'warn', lrsInterval: '1s' });
  const sluice: Sluice = await startSluice(config, pino({ level: 'warn' }));
  const base = `http://127.0.0.1:${sluice.httpPort}`;
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(base + p, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const backends: Backend[] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
  const clients: XdsClient[] = [];
  const traffic = new Traffic();
  let printer: NodeJS.Timeout | undefined;
  const shutdown = async () => {
    if (printer) clearInterval(printer);
    traffic.stop();
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all(backends.map((b) => b.stop()));
    await sluice.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    console.log(bold('Sluice demo') + dim(` — REST http://127.0.0.1:${sluice.httpPort}, xDS 127.0.0.1:${sluice.xdsPort}`));
    console.log(`backends: echo v1 on :${backends[0]!.port}, echo v2 on :${backends[1]!.port}`);
    await api('PUT', '/v1/services/echo', {
      versions: Object.fromEntries(backends.map((b) => [b.version, { endpoints: [{ address: '127.0.0.1', port: b.port }] }])),
      stable: 'v1',
    });
    console.log('declared service echo (stable v1); starting proxyless gRPC clients (xds:///echo)…');
    for (let i = 1; i <= opts.clients; i++) clients.push(await spawnXdsClient({ nodeId: `demo-client-${i}`, xdsPort: sluice.xdsPort }));
    const calling = traffic.start(clients);

    let current: RolloutState | undefined;
    printer = setInterval(() => console.log(line(current, 'v1', 'v2', traffic.drain())), 1000);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const users = new StickyUsers(clients[0]!, ['alice', 'chen', 'walter', 'nadia', 'erin', 'priya', 'grace']);
    const watch = async (ms: number, onTick?: (r: RolloutState) => Promise<void>) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        current = await api('GET', '/v1/rollouts/echo');
        await onTick?.(current!);
        await sleep(200);
      }
    };
    // Once the fleet ACKed a new weight, see where each user goes.
    const sampleUsers = async (r: RolloutState) => {
      if ((r.phase === 'Progressing' || r.phase === 'Paused') && !r.awaitingAck && r.canaryWeight !== users.lastWeight) await users.sample(r.canaryWeight);
    };
    await sleep(2500);

    console.log(bold('\n▶ rollout v1 → v2: 10%, pause 3s, 30%, pause 3s, 60%, pause (testers with x-canary: true always get v2)'));
    console.log(dim(`  signed-in users send ${BUCKET_HEADER}: sha256(user id) mod 100 (docs/sticky.md); buckets below the weight get v2`));
    current = await api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 10 }, { pause: { duration: '3s' } }, { setWeight: 30 }, { pause: { duration: '3s' } }, { setWeight: 60 }, { pause: {} }],
      headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
      sticky: { bucketHeader: BUCKET_HEADER },
    });
    await watch(9500, sampleUsers);
    const moved = users.movedBack();
    console.log(dim(`  ${moved.length === 0 ? 'no user who reached v2 went back to v1 as the weight rose' : `went back to v1: ${moved.join(', ')}`}`));
    const cohort = await clients[0]!.call('echo', 20, { metadata: { 'x-canary': 'true' } });
    console.log(dim(`  a tester's 20 calls with x-canary: true → ${JSON.stringify(cohort.versions)}`));

    console.log(bold('\n⏪ something looks wrong: rollback (REST call waits until every client ACKed it)'));
    const started = Date.now();
    const rb = await api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'demo: latency looked off' });
    current = rb;
    const fleet = rb.fleet as { acknowledged: boolean; nodes: { node: string; state: string; ms: number | null }[] };
    console.log(
      `  rolled back in ${Date.now() - started} ms; ` +
        fleet.nodes.map((n) => `${n.node} ${n.state}${n.ms !== null ? ` in ${n.ms} ms` : ''}`).join(', '),
    );
    await users.sample(0, 'after rollback');
    await watch(3500);
    printHistory(current!);

    console.log(bold('\n▶ again, now with analysis: the canary must keep a success rate ≥ 95% (judged every 2s from the clients\' load reports)'));
    current = await api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 20 }, { pause: { duration: '4s' } }, { setWeight: 50 }, { pause: {} }],
      analysis: { interval: '2s', failureLimit: 0, inconclusiveLimit: 5, minRequests: 50, metrics: [{ name: 'success', successRate: { min: 0.95 } }] },
    });
    await watch(5000);
    console.log(bold('\n💥 v2 starts failing 30% of its calls'));
    const failingSince = Date.now();
    backends[1]!.configure({ errorRate: 0.3 });
    const until = Date.now() + 15_000;
    while (current!.phase !== 'RolledBack' && Date.now() < until) await watch(100);
    if (current!.phase === 'RolledBack') {
      const last = current!.history[current!.history.length - 1]!;
      console.log(`  analysis rolled back ${Date.parse(last.at) - failingSince} ms after v2 started failing: ${last.reason}`);
    } else console.log('  (analysis did not roll back within 15 s)');
    await watch(3000);
    backends[1]!.configure({ errorRate: 0 });

    clearInterval(printer);
    printer = undefined;
    printHistory(current!);

    if (opts.keepRunning) {
      console.log(bold(`\nkeeps running: try curl ${base}/v1/fleet or POST ${base}/v1/rollouts (Ctrl-C stops)`));
      printer = setInterval(() => console.log(line(current, 'v1', 'v2', traffic.drain())), 2000);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    traffic.stop();
    await calling;
  } finally {
    await shutdown();
  }
}
