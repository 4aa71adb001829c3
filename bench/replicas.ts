// The `replicas` scenario: two Sluice replicas (real processes, `sluice serve --store etcd://`)
// on a 3-member etcd cluster on loopback, with the load generator's streams split between them.
//   rollback  — a rollback through replica A's REST API; ms from the start of the call until
//               each stream has the new RouteConfiguration, for the streams on A (same replica)
//               and on B (through etcd: A's commit → B's watch → B's publish → B's streams).
//   takeover  — kill -9 of the leader just before a timed pause ends; ms from the kill until
//               the new leader's first scheduled transition (the pause's end), with the lease
//               TTL the replicas run with.
// Needs /usr/bin/etcd (Debian's etcd-server); skipped with a note without it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EtcdCluster } from '../test/support/etcd.js';
import { ETCD, startEtcdCluster } from '../test/support/etcd.js';
import { freePort } from '../test/support/process.js';
import type { StreamSpec } from './generator.js';
import { CANARY_WEIGHT, ROLLBACK_SERVICE, serviceName, serviceSpec } from './fleet.js';
import type { Child } from './ipc.js';
import { nowMs } from './ipc.js';
import { rest } from './rest.js';
import type { Dist } from './stats.js';
import { dist, medianRun, round } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ReplicasOptions {
  gens: Child[];
  /** Streams on each replica. */
  streams: number;
  reps: number;
  takeoverReps: number;
  /** The replicas' --lease-ttl. */
  leaseTtl: string;
  perConn: number;
  services: number;
  logLevel: string;
  note: (msg: string) => void;
}

export interface ReplicasResult {
  scenario: 'replicas';
  skipped?: string;
  streamsPerReplica?: number;
  reps?: number;
  /** REST on A → streams on A (median run by max). */
  sameReplica?: Dist;
  /** REST on A → streams on B. */
  otherReplica?: Dist;
  /** Per run: [A max, B max]. */
  runs?: [number, number][];
  /** Median over runs of (B max − A max): what going through etcd adds, run by run. */
  pairedMaxDiffMs?: number;
  leaseTtl?: string;
  /** kill -9 of the leader → the new leader's first scheduled transition, ms, per run. */
  takeoverMs?: number[];
  /** How late the pause ended (transition time minus its deadline), ms, per run. */
  lateMs?: number[];
}

interface Replica {
  id: string;
  httpPort: number;
  xdsPort: number;
  dataDir: string;
  proc: ChildProcess;
}

export async function replicasScenario(o: ReplicasOptions): Promise<ReplicasResult> {
  if (!fs.existsSync(ETCD)) return { scenario: 'replicas', skipped: `${ETCD} is not installed (Debian: etcd-server)` };
  const etcd = await startEtcdCluster({ size: 3 });
  const store = `etcd://${etcd.hosts.map((h) => h.replace('http://', '')).join(',')}`;
  const live: Replica[] = [];
  let serial = 0;
  const startReplica = async (): Promise<Replica> => {
    const r = { id: `replica-${serial++}`, httpPort: await freePort(), xdsPort: await freePort(), dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-replica-')) };
    const proc = spawn(
      process.execPath,
      [path.join(ROOT, 'bin/sluice.js'), 'serve', '--store', store, '--replica-id', r.id, '--lease-ttl', o.leaseTtl, '--data-dir', r.dataDir,
       '--http-port', String(r.httpPort), '--xds-port', String(r.xdsPort), '--log-level', o.logLevel],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const replica = { ...r, proc };
    await until(async () => (await fetch(`http://127.0.0.1:${r.httpPort}/readyz`)).status === 200, 30_000, `${r.id} ready`);
    live.push(replica);
    return replica;
  };
  try {
    const a = await startReplica();
    const b = await startReplica();
    o.note(`replicas: ${a.id} and ${b.id} on a 3-member etcd; ${o.streams} streams on each`);
    for (let i = 0; i < o.services; i++) await rest(a, 'PUT', `/v1/services/${serviceName(i)}`, serviceSpec(i));
    await until(async () => (await rest(b, 'GET', '/v1/services')).services.length === o.services, 30_000, 'B has every service');
    const specs = (prefix: string): StreamSpec[] => Array.from({ length: o.streams }, (_, i) => ({ nodeId: `${prefix}-${i}`, flavour: 'grpc', targets: [ROLLBACK_SERVICE] }));
    await open(o, 'A', a.xdsPort, specs('on-a'));
    await open(o, 'B', b.xdsPort, specs('on-b'));

    // --- rollback through A, to the streams of A and of B ---
    const runs: { a: Dist; b: Dist }[] = [];
    for (let rep = 0; rep <= o.reps; rep++) {
      await rest(a, 'POST', '/v1/rollouts', { service: ROLLBACK_SERVICE, canary: 'v2', steps: [{ setWeight: CANARY_WEIGHT }, { pause: {} }] });
      await until(async () => (await rest(b, 'GET', `/v1/rollouts/${ROLLBACK_SERVICE}`)).phase === 'Paused', 60_000, 'the weight step acknowledged');
      await quiet(o);
      await Promise.all(o.gens.map((g) => g.call('arm', {})));
      const t0 = nowMs();
      await rest(a, 'POST', `/v1/rollouts/${ROLLBACK_SERVICE}/rollback`, { reason: 'bench' });
      const onA = await collect(o, 'A', t0);
      const onB = await collect(o, 'B', t0);
      if (rep > 0) runs.push({ a: dist(onA), b: dist(onB) }); // rep 0 warms up
      await quiet(o);
    }
    o.note(`replicas: rollback through A, max on A ${medianRun(runs.map((r) => r.a)).max} ms, on B ${medianRun(runs.map((r) => r.b)).max} ms (median runs)`);

    // --- leader takeover ---
    const takeoverMs: number[] = [];
    const lateMs: number[] = [];
    const pauseMs = 4000;
    for (let rep = 0; rep < o.takeoverReps; rep++) {
      const via = live[0]!;
      await rest(via, 'POST', '/v1/rollouts', { service: ROLLBACK_SERVICE, canary: 'v2', steps: [{ setWeight: CANARY_WEIGHT }, { pause: { duration: `${pauseMs}ms` } }, { setWeight: 2 * CANARY_WEIGHT }, { pause: {} }] });
      const paused = await until(async () => {
        const r = await rest(via, 'GET', `/v1/rollouts/${ROLLBACK_SERVICE}`);
        return r.pauseUntil ? r : undefined;
      }, 60_000, 'the timed pause');
      const leaderId = await until(async () => (await rest(via, 'GET', '/v1/status')).replicas.leader as string | null, 30_000, 'a leader');
      const leader = live.find((r) => r.id === leaderId)!;
      // Killed just before the pause ends: the transition is due while no replica leads.
      const killAt = Date.parse(paused.pauseUntil) - 100;
      await new Promise((r) => setTimeout(r, Math.max(0, killAt - Date.now())));
      const killedAt = Date.now();
      leader.proc.kill('SIGKILL');
      live.splice(live.indexOf(leader), 1);
      const survivor = live[0]!;
      const ended = await until(async () => {
        const r = await rest(survivor, 'GET', `/v1/rollouts/${ROLLBACK_SERVICE}`);
        return r.history.find((h: { event: string; step?: number }) => h.event === 'StepCompleted' && h.step === 1);
      }, 120_000, 'the pause ended by the new leader');
      takeoverMs.push(Date.parse(ended.at) - killedAt);
      lateMs.push(Date.parse(ended.at) - Date.parse(paused.pauseUntil));
      o.note(`replicas: takeover ${takeoverMs.at(-1)} ms after kill -9 of ${leaderId} (lease TTL ${o.leaseTtl})`);
      await rest(survivor, 'POST', `/v1/rollouts/${ROLLBACK_SERVICE}/rollback`, {});
      await startReplica();
    }
    return {
      scenario: 'replicas',
      streamsPerReplica: o.streams,
      reps: o.reps,
      sameReplica: medianRun(runs.map((r) => r.a)),
      otherReplica: medianRun(runs.map((r) => r.b)),
      runs: runs.map((r) => [r.a.max, r.b.max]),
      pairedMaxDiffMs: round(median(runs.map((r) => r.b.max - r.a.max))),
      leaseTtl: o.leaseTtl,
      takeoverMs,
      lateMs,
    };
  } finally {
    await Promise.all(o.gens.map((g) => g.call('close', {})));
    for (const r of live) {
      r.proc.kill('SIGKILL');
      fs.rmSync(r.dataDir, { recursive: true, force: true });
    }
    await closeEtcd(etcd);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}

async function closeEtcd(etcd: EtcdCluster): Promise<void> {
  await etcd.close().catch(() => undefined);
}

async function open(o: ReplicasOptions, tag: string, port: number, specs: StreamSpec[]): Promise<void> {
  const per = Math.ceil(specs.length / o.gens.length);
  const results = await Promise.all(
    o.gens.map((g, w) => g.call('open', { tag, port, perConn: o.perConn, specs: specs.slice(w * per, (w + 1) * per), batch: 500, timeoutMs: 120_000 })),
  );
  const synced = results.reduce((n, r) => n + r.synced, 0);
  if (synced < specs.length) o.note(`replicas: only ${synced}/${specs.length} streams on ${tag} synced`);
}

async function quiet(o: ReplicasOptions): Promise<void> {
  await Promise.all(o.gens.map((g) => g.call('quiet', { idleMs: 150, timeoutMs: 60_000 })));
}

/** Each armed stream's arrival time of the new routes, in ms after t0. */
async function collect(o: ReplicasOptions, tag: string, t0: number): Promise<Float64Array> {
  const stamps = await Promise.all(o.gens.map((g) => g.call<Float64Array>('collect', { tag, timeoutMs: 60_000 })));
  const out = new Float64Array(stamps.reduce((n, s) => n + s.length, 0));
  let i = 0;
  for (const s of stamps) for (const v of s) out[i++] = round(v - t0, 2);
  return out;
}

async function until<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`replicas: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
