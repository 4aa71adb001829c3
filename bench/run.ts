// `npm run bench`: fan-out, memory, reconnect storm, churn and slow-consumer scenarios for
// Sluice and for the floor (a bare grpc-js server), with the same load generator in one run.
// Prints a human table and one JSON line per scenario (prefixed `BENCH `). See docs/performance.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Child, nowMs } from './ipc.js';
import type { StreamSpec } from './generator.js';
import { CANARY_WEIGHT, ROLLBACK_SERVICE, STEP_WEIGHT, rolloutSpec, serviceName, serviceSpec } from './fleet.js';
import type { Dist } from './stats.js';
import { dist, medianRun, ratio, round, table } from './stats.js';
import { replicasScenario } from './replicas.js';
import { rest } from './rest.js';

const HELP = `usage: npm run bench -- [options]
  --n LIST            fan-out sizes for rollback/memory (default 1000,5000,10000)
  --scenarios LIST    rollback,step,memory,storm,churn,slow,micro,delta-names,abuse,crosscheck,
                      first-byte,bytes,replicas (default: all)
  --resubscribe MODE  how simulated gRPC nodes follow a route whose clusters change: grpc-js (as
                      @grpc/grpc-js-xds does, the default) or batch
  --first-byte-services LIST  services declared for first-byte (default 1000,10000)
  --envoy-routes MODE Sluice's --envoy-routes: single (default) or scoped
  --quick             1 repetition, 1 storm, churn 10 s (use while iterating)
  --reps K            rollback repetitions per size and server (default 9; the median run is shown)
  --workers W         load-generator processes (default 2)
  --per-conn K        ADS streams per HTTP/2 connection (default 100)
  --services S        services declared (default 100)
  --envoy-share F     fraction of nodes that subscribe like Envoy (wildcard LDS/CDS) (default 0)
  --churn-seconds T   churn duration (default 60; --quick: 10)
  --churn-streams K   streams during churn (default 1000)
  --churn-targets K   services each churn node calls (default 5)
  --slow-streams K    healthy streams in the slow-consumer scenario (default 1000)
  --servers LIST      floor,sluice (default both)
  --replica-streams K streams on each of the two replicas in the replicas scenario (default 1000)
  --lease-ttl T       the replicas' --lease-ttl in the replicas scenario (default 10s, Sluice's default)
  --takeover-reps K   leader kills in the replicas scenario (default 3; --quick: 1)
  --log-level L       Sluice log level, output discarded (default info)
  --profile           CPU-profile the server children over each measured window (rollback reps,
                      storm, churn, slow) into bench-profiles/*.cpuprofile (numbers then carry
                      the profiler's overhead)
  --cpu-prof          run the Sluice child under node --cpu-prof (whole process, bench-profiles/)
  --json FILE         also append the JSON lines to FILE`;

const { values: opt } = parseArgs({
  options: {
    n: { type: 'string', default: '1000,5000,10000' },
    scenarios: { type: 'string', default: 'rollback,step,memory,storm,churn,slow,micro,delta-names,abuse,crosscheck,first-byte,bytes,replicas' },
    resubscribe: { type: 'string', default: 'grpc-js' },
    'envoy-routes': { type: 'string', default: 'single' },
    'first-byte-services': { type: 'string', default: '1000,10000' },
    'replica-streams': { type: 'string', default: '1000' },
    'lease-ttl': { type: 'string', default: '10s' },
    'takeover-reps': { type: 'string' },
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    workers: { type: 'string', default: '2' },
    'per-conn': { type: 'string', default: '100' },
    services: { type: 'string', default: '100' },
    'envoy-share': { type: 'string', default: '0' },
    'churn-seconds': { type: 'string' },
    'churn-streams': { type: 'string', default: '1000' },
    'churn-targets': { type: 'string', default: '5' },
    'slow-streams': { type: 'string', default: '1000' },
    servers: { type: 'string', default: 'floor,sluice' },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}

const Ns = opt.n.split(',').map(Number);
const scenarios = new Set(opt.scenarios.split(','));
const reps = Number(opt.reps ?? (opt.quick ? 1 : 9));
const stormReps = opt.quick ? 1 : 5;
const workers = Number(opt.workers);
const perConn = Number(opt['per-conn']);
const serviceCount = Number(opt.services);
const envoyShare = Number(opt['envoy-share']);
const churnSeconds = Number(opt['churn-seconds'] ?? (opt.quick ? 10 : 60));
const servers = opt.servers.split(',') as ('floor' | 'sluice')[];
const profileDir = path.resolve('bench-profiles');
const COLLECT_TIMEOUT = 60_000;

type Kind = 'floor' | 'sluice';

// ---------------------------------------------------------------------------------------------
// Output

const human: string[] = [];
/** Each goal of the issue with its figure, printed last with pass/fail. */
const goals: { name: string; value: number; limit: number; detail: string }[] = [];
function goal(name: string, value: number, limit: number, detail = ''): void {
  goals.push({ name, value, limit, detail });
}
function emit(record: Record<string, unknown>): void {
  const line = JSON.stringify(record);
  console.log(`BENCH ${line}`);
  if (opt.json) fs.appendFileSync(opt.json, line + '\n');
}
function note(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// Processes

let gens: Child[] = [];

async function startGenerators(): Promise<void> {
  gens = [];
  for (let w = 0; w < workers; w++) {
    const g = Child.start(`generator-${w}`, 'generator.js', [], ['--max-old-space-size=4096']);
    await new Promise<void>((resolve) => g.on('ready', () => resolve()));
    gens.push(g);
  }
}

interface Server {
  kind: Kind;
  child: Child;
  xdsPort: number;
  httpPort: number;
  dataDir?: string;
}

async function startServer(kind: Kind, opts: { dataDir?: string; mode?: 'app' | 'churn'; profile?: boolean } = {}): Promise<Server> {
  const execArgv = ['--expose-gc', '--max-old-space-size=8192'];
  if (opts.profile) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  let child: Child;
  let dataDir: string | undefined;
  if (kind === 'floor') child = Child.start('floor', 'floor-server.js', [String(serviceCount)], execArgv);
  else {
    dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
    child = Child.start('sluice', 'sluice-server.js', [opts.mode ?? 'app', dataDir, opt['log-level'], String(serviceCount), opt['envoy-routes']], execArgv);
  }
  const ports = await new Promise<{ xdsPort: number; httpPort: number }>((resolve, reject) => {
    child.on('ready', resolve);
    void child.exited.then((code) => reject(new Error(`${kind} exited during start-up (${code})`)));
  });
  return { kind, child, dataDir, ...ports };
}

async function declareServices(server: Server): Promise<void> {
  if (server.kind !== 'sluice') return;
  for (let i = 0; i < serviceCount; i++) await rest(server, 'PUT', `/v1/services/${serviceName(i)}`, serviceSpec(i));
  await new Promise((r) => setTimeout(r, 100)); // the publisher's debounce
}

// ---------------------------------------------------------------------------------------------
// Streams (tagged by server kind: both fleets stay connected while the two are measured in turn)

const resubscribe = opt.resubscribe as 'grpc-js' | 'batch';
if (resubscribe !== 'grpc-js' && resubscribe !== 'batch') throw new Error(`--resubscribe: grpc-js or batch, not ${resubscribe}`);

function fanoutSpecs(n: number, prefix: string): StreamSpec[] {
  const envoyEvery = envoyShare > 0 ? Math.round(1 / envoyShare) : 0;
  return Array.from({ length: n }, (_, i) => ({
    nodeId: `${prefix}-${i}`,
    resubscribe,
    flavour: envoyEvery && i % envoyEvery === 0 ? 'envoy' : 'grpc',
    targets: [ROLLBACK_SERVICE],
  }));
}

/** Opens the specs block by block over the generators (each generator gets a contiguous share). */
async function openStreams(server: Server, specs: StreamSpec[], batch = 1000): Promise<{ ms: number; synced: number }> {
  const started = nowMs();
  const per = Math.ceil(specs.length / gens.length);
  const results = await Promise.all(
    gens.map((g, w) =>
      g.call('open', {
        tag: server.kind,
        port: server.xdsPort,
        perConn,
        specs: specs.slice(w * per, (w + 1) * per),
        batch: Math.ceil(batch / gens.length),
        timeoutMs: 120_000,
      }),
    ),
  );
  const synced = results.reduce((n, r) => n + r.synced, 0);
  if (synced < specs.length) note(`only ${synced}/${specs.length} streams synced`);
  return { ms: round(nowMs() - started), synced };
}

async function closeStreams(tag?: Kind): Promise<void> {
  await Promise.all(gens.map((g) => g.call('close', { tag })));
}

async function quiet(tag?: Kind, idleMs = 150, exclude: string[] = []): Promise<void> {
  const r = await Promise.all(gens.map((g) => g.call('quiet', { tag, idleMs, timeoutMs: 60_000, exclude })));
  if (r.some((x) => !x.ok)) note(`not quiet: ${JSON.stringify(r)}`);
}

async function genStatus(): Promise<any[]> {
  return Promise.all(gens.map((g) => g.call('status', {})));
}

function cpuMsBetween(a: { cpu: NodeJS.CpuUsage }, b: { cpu: NodeJS.CpuUsage }): number {
  return (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system) / 1000;
}

interface Timed {
  lat: Float64Array;
  triggerMs: number;
  /** From t0 to the start of the fan-out loop (REST, store, translation; floor: its HTTP call). */
  preludeMs: number;
  /** The synchronous loop handing the new routes to every stream. */
  loopMs: number;
  /** From the end of the loop until the event loop could hand its writes to the socket. */
  afterLoopMs: number;
  /** Server CPU from the trigger until the last stream had the change. */
  serverCpuMs: number;
  /** CDS and EDS requests the fleet sent because of the change (re-subscriptions and their ACKs), per stream. */
  cdsEdsPerStream?: number;
}

/** Arms every stream of the server's fleet, runs the trigger, returns each stream's latency from t0. */
async function timedPush(server: Server, trigger: () => Promise<unknown>, exclude: string[] = []): Promise<Timed> {
  await Promise.all(gens.map((g) => g.call('arm', { tag: server.kind, exclude })));
  await server.child.call('marks');
  const cpu0 = await server.child.call('cpu');
  const t0 = nowMs();
  await trigger();
  const triggerMs = nowMs() - t0;
  const stamps = await Promise.all(gens.map((g) => g.call<Float64Array>('collect', { tag: server.kind, timeoutMs: COLLECT_TIMEOUT, exclude })));
  const cpu1 = await server.child.call('cpu');
  const marks: { group: string; start: number; end: number; idle?: number }[] = await server.child.call('marks');
  const loop = marks.find((m) => m.group === 'grpc');
  const all = new Float64Array(stamps.reduce((n, s) => n + s.length, 0));
  let o = 0;
  for (const st of stamps) for (let i = 0; i < st.length; i++) all[o++] = st[i]! - t0;
  return {
    lat: all,
    triggerMs,
    preludeMs: loop ? loop.start - t0 : NaN,
    loopMs: loop ? loop.end - loop.start : NaN,
    afterLoopMs: loop?.idle !== undefined ? loop.idle - loop.end : NaN,
    serverCpuMs: cpuMsBetween(cpu0, cpu1),
  };
}

async function waitRolloutPaused(server: Server, service: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await rest(server, 'GET', `/v1/rollouts/${service}`);
    if (r.phase === 'Paused') return;
    if (Date.now() > deadline) throw new Error(`rollout of ${service} is ${r.phase}, not Paused`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** CDS and EDS requests the generators sent so far (for one server's fleet and the other's alike). */
async function cdsEdsRequests(): Promise<number> {
  return (await genStatus()).reduce((n, st) => n + st.counters.requestsByType[2] + st.counters.requestsByType[3], 0);
}

/** A timed change, and the CDS/EDS requests per stream it caused (counted once the fleet is quiet). */
async function timedWithRequests(server: Server, trigger: () => Promise<unknown>, exclude: string[]): Promise<Timed> {
  const before = await cdsEdsRequests();
  const r = await timedPush(server, trigger, exclude);
  await quiet(server.kind, 150, exclude);
  return { ...r, cdsEdsPerStream: round(((await cdsEdsRequests()) - before) / Math.max(1, r.lat.length), 3) };
}

/** Brings the rollback service to the canary weight (not timed): a rollout (Sluice), a push (floor). */
async function toCanaryWeight(server: Server, exclude: string[] = []): Promise<void> {
  if (server.kind === 'sluice') {
    await timedPush(server, () => rest(server, 'POST', '/v1/rollouts', rolloutSpec(ROLLBACK_SERVICE)), exclude);
    // With a stalled node the weight step never completes (the fleet has not ACKed it): the
    // rollback then comes from Progressing.
    if (exclude.length === 0) await waitRolloutPaused(server, ROLLBACK_SERVICE);
  } else await timedPush(server, () => rest(server, 'POST', `/push?weight=${CANARY_WEIGHT}`), exclude);
  await quiet(server.kind, 150, exclude);
}

const rollbackTrigger = (server: Server) =>
  server.kind === 'sluice'
    ? () => rest(server, 'POST', `/v1/rollouts/${ROLLBACK_SERVICE}/rollback`, { reason: 'bench' })
    : () => rest(server, 'POST', '/push?weight=0');

/** One rollback measurement: the canary weight is pushed first (not timed), then the timed rollback. */
async function rollbackOnce(server: Server, exclude: string[] = []): Promise<Timed> {
  await toCanaryWeight(server, exclude);
  return timedWithRequests(server, rollbackTrigger(server), exclude);
}

/** One weight step: at the canary weight (not timed), `promote` to the next weight (timed), then
 *  a rollback (not timed) so that the next repetition starts afresh. */
async function stepOnce(server: Server): Promise<Timed> {
  await toCanaryWeight(server);
  const trigger =
    server.kind === 'sluice'
      ? () => rest(server, 'POST', `/v1/rollouts/${ROLLBACK_SERVICE}/promote`, {})
      : () => rest(server, 'POST', `/push?weight=${STEP_WEIGHT}`);
  const r = await timedWithRequests(server, trigger, []);
  await timedPush(server, rollbackTrigger(server));
  await quiet(server.kind);
  return r;
}

async function profiled<T>(server: Server, name: string, fn: () => Promise<T>): Promise<T> {
  if (!opt.profile) return fn();
  await server.child.call('profileStart');
  try {
    return await fn();
  } finally {
    const file = await server.child.call('profileStop', { file: path.join(profileDir, `${name}.cpuprofile`) });
    note(`profile: ${file}`);
  }
}

async function memory(server: Server): Promise<NodeJS.MemoryUsage> {
  return server.child.call('mem');
}

function load(): number {
  return round(os.loadavg()[0]!, 2);
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Run {
  dist: Dist;
  triggerMs: number;
  preludeMs: number;
  loopMs: number;
  serverCpuMs: number;
  cdsEdsPerStream: number;
}

type Op = 'rollback' | 'step';
const OPS: Record<Op, (server: Server) => Promise<Timed>> = { rollback: (s) => rollbackOnce(s), step: stepOnce };

interface FanoutResult {
  kind: Kind;
  n: number;
  /** Per measured change: the median run, and every run. */
  ops: Partial<Record<Op, { median: Dist; runs: Run[] }>>;
  memPerStreamKiB: number;
  heapPerStreamKiB: number;
  idleRssMiB: number;
  connectMs: number;
  storms: Dist[];
}

/** Rollback and memory (and the storm at the largest N) for both servers at one N. */
async function fanout(n: number, withStorm: boolean): Promise<FanoutResult[]> {
  const load0 = load();
  note(`N=${n}: starting ${servers.join(' and ')} (load average ${load0})`);
  const live = new Map<Kind, Server>();
  const results = new Map<Kind, FanoutResult>();
  for (const kind of servers) {
    const server = await startServer(kind, { profile: opt['cpu-prof'] && kind === 'sluice' });
    await declareServices(server);
    const idle = await memory(server);
    const connect = await openStreams(server, fanoutSpecs(n, `${kind}-node`));
    await quiet(kind);
    const loaded = await memory(server);
    const r: FanoutResult = {
      kind,
      n,
      ops: {},
      memPerStreamKiB: round((loaded.rss - idle.rss) / n / 1024, 2),
      heapPerStreamKiB: round((loaded.heapUsed - idle.heapUsed) / n / 1024, 2),
      idleRssMiB: round(idle.rss / 2 ** 20),
      connectMs: connect.ms,
      storms: [],
    };
    note(`${kind}: N=${n} connected in ${connect.ms} ms; RSS +${r.memPerStreamKiB} KiB/stream (heap +${r.heapPerStreamKiB})`);
    live.set(kind, server);
    results.set(kind, r);
  }

  for (const op of (['rollback', 'step'] as const).filter((o) => scenarios.has(o))) {
    for (const server of live.values()) await OPS[op](server); // warm-up (JIT, first allocations)
    for (const server of live.values()) if (opt.profile) await server.child.call('profileStart');
    for (const r of results.values()) r.ops[op] = { median: dist([]), runs: [] };
    for (let rep = 0; rep < reps; rep++) {
      // Alternate who goes first, so drifting background load hits both alike.
      const order = rep % 2 === 0 ? [...live.values()] : [...live.values()].reverse();
      for (const server of order) {
        const res = await OPS[op](server);
        const d = dist(res.lat);
        results.get(server.kind)!.ops[op]!.runs.push({
          dist: d,
          triggerMs: round(res.triggerMs),
          preludeMs: round(res.preludeMs),
          loopMs: round(res.loopMs),
          serverCpuMs: round(res.serverCpuMs),
          cdsEdsPerStream: res.cdsEdsPerStream ?? NaN,
        });
        note(
          `${server.kind}: N=${n} ${op} #${rep + 1}: p50 ${d.p50} p99 ${d.p99} max ${d.max} ms ` +
            `(before the loop ${round(res.preludeMs)} ms, loop ${round(res.loopMs)} ms, after it ${round(res.afterLoopMs)} ms, REST reply ${round(res.triggerMs)} ms, ` +
            `server CPU ${round(res.serverCpuMs)} ms, CDS+EDS requests/stream ${res.cdsEdsPerStream}${d.missing ? `, ${d.missing} missing` : ''})`,
        );
      }
    }
    for (const server of live.values())
      if (opt.profile)
        note(`profile: ${await server.child.call('profileStop', { file: path.join(profileDir, `${op}-${server.kind}-${n}.cpuprofile`) })}`);
    for (const r of results.values()) r.ops[op]!.median = medianRun(r.ops[op]!.runs.map((x) => x.dist));
  }

  if (withStorm) {
    for (let rep = 0; rep < stormReps; rep++) {
      const order = rep % 2 === 0 ? [...live.keys()] : [...live.keys()].reverse();
      for (const kind of order) {
        const old = live.get(kind)!;
        await old.child.kill(); // a crash: sockets reset, nobody says goodbye
        const server = await startServer(kind, { dataDir: old.dataDir, profile: opt['cpu-prof'] && kind === 'sluice' });
        live.set(kind, server);
        const t0 = nowMs();
        const res = await profiled(server, `storm-${kind}-${n}`, () =>
          Promise.all(gens.map((g) => g.call('reconnect', { tag: kind, port: server.xdsPort, timeoutMs: 120_000 }))),
        );
        const lat: number[] = [];
        for (const r of res) for (const x of r.syncedAt as Float64Array) lat.push(x - t0);
        const d = dist(lat);
        results.get(kind)!.storms.push(d);
        note(`${kind}: N=${n} reconnect storm #${rep + 1}: all synced in ${d.max} ms (p50 ${d.p50}${d.missing ? `, ${d.missing} missing` : ''})`);
        await quiet(kind);
      }
    }
  }

  await closeStreams();
  for (const server of live.values()) {
    await server.child.stop(20_000);
    if (server.dataDir) fs.rmSync(server.dataDir, { recursive: true, force: true });
  }
  note(`N=${n}: done (load average ${load0} → ${load()})`);
  return [...results.values()];
}

/** Writes N service declarations straight into a data dir, as the file store keeps them (PUT
 *  over REST would take minutes at 10,000: every write is fsynced). */
function seedServices(dataDir: string, n: number): void {
  const dir = path.join(dataDir, 'services');
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, `${serviceName(i)}.json`), JSON.stringify({ name: serviceName(i), ...serviceSpec(i) }));
}

/**
 * From the REST call to the first byte on the wire, with many services declared: one gRPC node
 * (calls svc-0) and one Envoy node (every service), a rollback of svc-0 and a weight step.
 * The rollback skips the debounce; the weight step waits for it (20 ms) by design.
 */
async function firstByte(services: number): Promise<Record<string, unknown>> {
  const load0 = load();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  seedServices(dataDir, services);
  const started = nowMs();
  const server = await startServer('sluice', { dataDir, profile: opt['cpu-prof'] });
  const startMs = round(nowMs() - started);
  const grpcId = 'first-byte-grpc';
  const envoyId = 'first-byte-envoy';
  await openStreams(server, [
    { nodeId: grpcId, flavour: 'grpc', targets: [ROLLBACK_SERVICE], resubscribe },
    { nodeId: envoyId, flavour: 'envoy', targets: [] },
  ]);
  await quiet();
  note(`first-byte: ${services} services, Sluice started in ${startMs} ms`);
  const fbReps = Math.max(5, reps);
  const byStream = async (r: Timed) => {
    // openStreams spreads the two specs over the generators in order: the gRPC node comes first.
    return { grpc: round(r.lat[0]!), envoy: round(r.lat[1]!), prelude: round(r.preludeMs) };
  };
  const rollbacks: { grpc: number; envoy: number; prelude: number }[] = [];
  const steps: { grpc: number; envoy: number; prelude: number }[] = [];
  await rollbackOnce(server); // warm-up
  await profiled(server, `first-byte-${services}`, async () => {
    for (let rep = 0; rep < fbReps; rep++) {
      rollbacks.push(await byStream(await rollbackOnce(server)));
      steps.push(await byStream(await stepOnce(server)));
    }
  });
  await closeStreams();
  await server.child.stop(20_000);
  fs.rmSync(dataDir, { recursive: true, force: true });
  const med = (xs: number[]) => round([...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!);
  const summary = (runs: typeof rollbacks) => ({
    grpcP50: med(runs.map((r) => r.grpc)),
    grpcMax: round(Math.max(...runs.map((r) => r.grpc))),
    envoyP50: med(runs.map((r) => r.envoy)),
    envoyMax: round(Math.max(...runs.map((r) => r.envoy))),
    beforeLoopP50: med(runs.map((r) => r.prelude)),
  });
  return { scenario: 'first-byte', services, startMs, reps: fbReps, rollback: summary(rollbacks), step: summary(steps), load: [load0, load()] };
}

async function churn(): Promise<Record<string, unknown>> {
  const streamsN = Number(opt['churn-streams']);
  const k = Number(opt['churn-targets']);
  const load0 = load();
  note(`churn: ${serviceCount} services, each changing weight every second for ${churnSeconds} s, ${streamsN} streams`);
  const server = await startServer('sluice', { mode: 'churn', profile: opt['cpu-prof'] });
  const specs: StreamSpec[] = Array.from({ length: streamsN }, (_, i) => ({
    nodeId: `churn-${i}`,
    flavour: 'grpc',
    targets: Array.from({ length: k }, (_, j) => serviceName((i + j * Math.floor(serviceCount / k)) % serviceCount)),
  }));
  await openStreams(server, specs);
  await quiet();
  const before = await genStatus();
  const res = await profiled(server, 'churn', () =>
    server.child.call('churn', { durationMs: churnSeconds * 1000, awaitAcks: true }, churnSeconds * 1000 + 60_000),
  );
  const after = await genStatus();
  const responses = (i: number) => after.reduce((n, st, w) => n + st.counters.responses[i] - before[w].counters.responses[i], 0);
  const allResponses = [0, 1, 2, 3].reduce((n, i) => n + responses(i), 0);
  const genCpuMs = after.reduce((n, st, w) => n + cpuMsBetween(before[w], st), 0);
  await closeStreams();
  await server.child.stop(20_000);
  const seconds = res.wallMs / 1000;
  return {
    scenario: 'churn',
    services: serviceCount,
    streams: streamsN,
    targetsPerNode: k,
    seconds: round(seconds),
    weightChangesPerSec: round(res.changes / seconds),
    publishesPerSec: round(res.publishes / seconds),
    pushesPerSec: round(allResponses / seconds),
    routePushesPerSec: round(responses(1) / seconds),
    serverCpuPct: round((res.cpuMs / res.wallMs) * 100),
    serverUserPct: round((res.userMs / res.wallMs) * 100),
    serverSystemPct: round((res.systemMs / res.wallMs) * 100),
    generatorCpuPct: round((genCpuMs / res.wallMs) * 100),
    load: [load0, load()],
  };
}

async function slowConsumer(): Promise<Record<string, unknown>> {
  const n = Number(opt['slow-streams']);
  const load0 = load();
  note(`slow consumer: ${n} healthy streams + 1 Envoy-like stream that stops reading`);
  const server = await startServer('sluice', { profile: opt['cpu-prof'] });
  await declareServices(server);
  const specs = fanoutSpecs(n, 'sluice-node');
  // The slow one: an Envoy (wildcard, large responses) on its own connection, default windows;
  // a reference Envoy reads normally and shows what the slow one would have been sent.
  const slowId = 'slow-envoy';
  const refId = 'reference-envoy';
  specs.push({ nodeId: refId, flavour: 'envoy', targets: [] });
  specs.push({ nodeId: slowId, flavour: 'envoy', targets: [], solo: true });
  await openStreams(server, specs);
  await quiet();

  const slowReps = Math.max(5, reps + 2);
  const repeat = async (exclude: string[]) => {
    const runs: Dist[] = [];
    for (let r = 0; r < slowReps; r++) runs.push(dist((await rollbackOnce(server, exclude)).lat));
    return medianRun(runs);
  };
  await rollbackOnce(server); // warm-up
  const baseline = await profiled(server, 'slow-baseline-sluice', () => repeat([]));
  note(`slow: baseline rollback p99 ${baseline.p99} max ${baseline.max} ms`);
  const rssBefore = (await memory(server)).rss;

  await Promise.all(gens.map((g) => g.call('pause', { nodeId: slowId })));
  // Changes that only the Envoys get (their route configuration holds every service): fill the
  // stalled stream's flow-control window and the server's buffers.
  const pushesToSlow = Math.min(30, serviceCount - 1);
  for (let i = 1; i <= pushesToSlow; i++) {
    await rest(server, 'POST', '/v1/rollouts', rolloutSpec(serviceName(i)));
    await new Promise((r) => setTimeout(r, 30));
  }
  const exclude = [slowId];
  await quiet(undefined, 150, exclude);
  const during = await profiled(server, 'slow-sluice', () => repeat(exclude));
  note(`slow: rollback with a stalled consumer p99 ${during.p99} max ${during.max} ms`);
  const rssAfter = (await memory(server)).rss;
  const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
  const rds = (await server.child.call('node', { id: slowId }))?.types?.[RDS];
  const ref = (await server.child.call('node', { id: refId }))?.types?.[RDS];

  const resumedAt = nowMs();
  await Promise.all(gens.map((g) => g.call('resume', { nodeId: slowId })));
  await quiet(undefined, 300);
  const caughtUpMs = round(nowMs() - resumedAt - 300);
  const rdsAfter = (await server.child.call('node', { id: slowId }))?.types?.[RDS];
  await closeStreams();
  await server.child.stop(20_000);
  if (server.dataDir) fs.rmSync(server.dataDir, { recursive: true, force: true });
  return {
    scenario: 'slow',
    streams: n,
    changesWhileStalled: pushesToSlow,
    reps: slowReps,
    baseline,
    withStalledConsumer: during,
    ratioP99: ratio(during.p99, baseline.p99),
    ratioMax: ratio(during.max, baseline.max),
    serverRssGrowthKiB: round((rssAfter - rssBefore) / 1024),
    slowAckedWhileStalled: rds?.ackedVersion ?? null,
    slowSentWhileStalled: rds?.sentVersion ?? null,
    currentVersion: ref?.ackedVersion ?? null,
    /** The server stopped writing to the stalled stream (its last sent version is not the current one). */
    writesHeldBack: !!ref && rds?.sentVersion !== ref.ackedVersion,
    slowCaughtUp: rdsAfter?.ackedVersion === rdsAfter?.sentVersion && rdsAfter?.ackedVersion === ref?.ackedVersion,
    slowCaughtUpMs: caughtUpMs,
    load: [load0, load()],
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (opt.profile || opt['cpu-prof']) fs.mkdirSync(profileDir, { recursive: true });
  const started = Date.now();
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memGiB: round(os.totalmem() / 2 ** 30),
    node: process.version,
    workers,
    perConn,
    services: serviceCount,
    envoyShare,
  };
  const loadAtStart = load();
  note(`machine: ${JSON.stringify(machine)}; load average ${loadAtStart}`);
  emit({ scenario: 'machine', ...machine });
  await startGenerators();

  const fan: FanoutResult[] = [];
  const maxN = Math.max(...Ns);
  if (scenarios.has('rollback') || scenarios.has('memory') || scenarios.has('storm')) {
    const sizes = scenarios.has('rollback') || scenarios.has('memory') ? Ns : [maxN];
    for (const n of sizes) fan.push(...(await fanout(n, scenarios.has('storm') && n === maxN)));
  }
  const get = (kind: Kind, n: number) => fan.find((f) => f.kind === kind && f.n === n);
  const medianOf = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
  };

  const OP_TITLES: Record<Op, string> = {
    rollback: '(a) rollback fan-out: ms from the start of the REST call (floor: of its push call) until each stream has the new RouteConfiguration',
    step: `(a2) weight step fan-out: POST .../promote from ${CANARY_WEIGHT}% to ${STEP_WEIGHT}% (floor: its push), ms until each stream has the new RouteConfiguration`,
  };
  for (const op of (['rollback', 'step'] as const).filter((o) => scenarios.has(o))) {
    const rows: (string | number)[][] = [];
    for (const n of Ns) {
      const f = get('floor', n)?.ops[op];
      const s = get('sluice', n)?.ops[op];
      const med = (r: typeof f, k: keyof Omit<Run, 'dist'>) => (r ? round(medianOf(r.runs.map((x) => x[k]))) : NaN);
      // Runs i of both servers were measured back to back: their ratio shares the conditions.
      const paired = (k: 'p99' | 'max') =>
        f && s ? round(medianOf(s.runs.map((x, i) => x.dist[k] / (f.runs[i]?.dist[k] ?? NaN)).filter(Number.isFinite)), 2) : NaN;
      const rec = {
        scenario: op,
        n,
        floor: f?.median,
        sluice: s?.median,
        ratioP50: f && s ? ratio(s.median.p50, f.median.p50) : null,
        ratioP99: f && s ? ratio(s.median.p99, f.median.p99) : null,
        ratioMax: f && s ? ratio(s.median.max, f.median.max) : null,
        pairedRatioP99: paired('p99'),
        pairedRatioMax: paired('max'),
        sluiceTriggerMs: med(s, 'triggerMs'),
        floorTriggerMs: med(f, 'triggerMs'),
        sluiceBeforeLoopMs: med(s, 'preludeMs'),
        floorBeforeLoopMs: med(f, 'preludeMs'),
        sluiceLoopMs: med(s, 'loopMs'),
        floorLoopMs: med(f, 'loopMs'),
        sluiceServerCpuMs: med(s, 'serverCpuMs'),
        floorServerCpuMs: med(f, 'serverCpuMs'),
        sluiceCdsEdsPerStream: s ? medianOf(s.runs.map((x) => x.cdsEdsPerStream)) : NaN,
        floorCdsEdsPerStream: f ? medianOf(f.runs.map((x) => x.cdsEdsPerStream)) : NaN,
        sluiceRuns: s?.runs.map((r) => [r.dist.p50, r.dist.p99, r.dist.max]),
        floorRuns: f?.runs.map((r) => [r.dist.p50, r.dist.p99, r.dist.max]),
      };
      emit(rec);
      if (n === maxN && rec.ratioP99 !== null && rec.ratioMax !== null) {
        const label = op === 'rollback' ? '1 rollback' : '2 weight step';
        goal(`${label} to ${n} streams: p99 ≤ 1.1× floor`, rec.ratioP99, 1.1, `${s!.median.p99} vs ${f!.median.p99} ms`);
        goal(`${label} to ${n} streams: max ≤ 1.1× floor`, rec.ratioMax, 1.1, `${s!.median.max} vs ${f!.median.max} ms (paired ${rec.pairedRatioMax}×)`);
        if (op === 'rollback')
          goal(`1 rollback: CDS+EDS requests per gRPC node (${resubscribe} clients)`, rec.sluiceCdsEdsPerStream, 0, 'no re-subscription');
      }
      rows.push([
        n,
        f?.median.p50 ?? NaN,
        f?.median.p99 ?? NaN,
        f?.median.max ?? NaN,
        s?.median.p50 ?? NaN,
        s?.median.p99 ?? NaN,
        s?.median.max ?? NaN,
        rec.ratioP99 ?? NaN,
        rec.ratioMax ?? NaN,
        rec.pairedRatioMax,
        `${med(f, 'preludeMs')} / ${med(f, 'loopMs')}`,
        `${med(s, 'preludeMs')} / ${med(s, 'loopMs')}`,
        med(f, 'serverCpuMs'),
        med(s, 'serverCpuMs'),
        `${rec.floorCdsEdsPerStream} / ${rec.sluiceCdsEdsPerStream}`,
      ]);
    }
    human.push(
      `${OP_TITLES[op]}; the median run of ${reps} (by max), servers measured in turn. paired: median of run-by-run ` +
        `ratios; pre/loop: ms before the fan-out loop starts (REST, store, translation) / in the loop; CPU: server CPU per change; ` +
        `CDS+EDS: requests per stream the change caused (${resubscribe} clients), floor / sluice\n` +
        table(
          [
            'N',
            'floor p50',
            'floor p99',
            'floor max',
            'sluice p50',
            'sluice p99',
            'sluice max',
            'p99 ×floor',
            'max ×floor',
            'paired max ×',
            'floor pre/loop ms',
            'sluice pre/loop ms',
            'floor CPU ms',
            'sluice CPU ms',
            'CDS+EDS',
          ],
          rows,
        ),
    );
  }

  if (scenarios.has('memory')) {
    const rows: (string | number)[][] = [];
    for (const n of Ns) {
      const f = get('floor', n);
      const s = get('sluice', n);
      emit({
        scenario: 'memory',
        n,
        floorKiBPerStream: f?.memPerStreamKiB,
        sluiceKiBPerStream: s?.memPerStreamKiB,
        floorHeapKiBPerStream: f?.heapPerStreamKiB,
        sluiceHeapKiBPerStream: s?.heapPerStreamKiB,
        floorIdleRssMiB: f?.idleRssMiB,
        sluiceIdleRssMiB: s?.idleRssMiB,
        floorConnectMs: f?.connectMs,
        sluiceConnectMs: s?.connectMs,
      });
      if (n === maxN && s) goal(`2 memory with ${n} streams: KiB per stream ≤ 16`, s.memPerStreamKiB, 16, `floor ${f?.memPerStreamKiB ?? '-'} KiB`);
      rows.push([n, f?.memPerStreamKiB ?? NaN, s?.memPerStreamKiB ?? NaN, f?.heapPerStreamKiB ?? NaN, s?.heapPerStreamKiB ?? NaN, f?.connectMs ?? NaN, s?.connectMs ?? NaN]);
    }
    human.push(
      '(b) memory: server RSS with N streams minus idle, after forced GC, KiB per stream (heap: V8 heap used)\n' +
        table(['N', 'floor RSS', 'sluice RSS', 'floor heap', 'sluice heap', 'floor connect ms', 'sluice connect ms'], rows),
    );
  }

  if (scenarios.has('storm')) {
    const f = get('floor', maxN);
    const s = get('sluice', maxN);
    const fm = f ? medianRun(f.storms) : undefined;
    const sm = s ? medianRun(s.storms) : undefined;
    emit({
      scenario: 'storm',
      n: maxN,
      floor: fm,
      sluice: sm,
      ratioMax: fm && sm ? ratio(sm.max, fm.max) : null,
      floorRuns: f?.storms.map((d) => [d.p50, d.max]),
      sluiceRuns: s?.storms.map((d) => [d.p50, d.max]),
    });
    human.push(
      `(c) reconnect storm: server killed and restarted, ${maxN} streams reconnect at once; ms until synced ` +
        `(LDS, RDS, CDS, EDS answered); median of ${stormReps}\n` +
        table(
          ['N', 'floor p50', 'floor all', 'sluice p50', 'sluice all', 'all ×floor'],
          [[maxN, fm?.p50 ?? NaN, fm?.max ?? NaN, sm?.p50 ?? NaN, sm?.max ?? NaN, fm && sm ? ratio(sm.max, fm.max) : NaN]],
        ),
    );
  }

  if (scenarios.has('first-byte')) {
    const rows: (string | number)[][] = [];
    const sizes = opt['first-byte-services'].split(',').map(Number);
    for (const services of sizes) {
      const r = (await firstByte(services)) as any;
      emit(r);
      rows.push([services, r.startMs, r.rollback.grpcP50, r.rollback.grpcMax, r.rollback.envoyP50, r.rollback.beforeLoopP50, r.step.grpcP50, r.step.envoyP50]);
      if (services === Math.max(...sizes))
        goal(`5 REST rollback → first byte at ${services} services, ms (median of ${r.reps})`, r.rollback.grpcP50, 20, `max ${r.rollback.grpcMax}; Envoy node ${r.rollback.envoyP50}`);
    }
    human.push(
      '(i) first byte: ms from the start of the REST call until the node has the new RouteConfiguration, one gRPC node (svc-0) ' +
        'and one Envoy node (every service) connected; median of the repetitions (a weight step waits for the 20 ms debounce by design)\n' +
        table(['services', 'start ms', 'rollback gRPC p50', 'rollback gRPC max', 'rollback Envoy p50', 'before loop p50', 'step gRPC p50', 'step Envoy p50'], rows),
    );
  }

  if (scenarios.has('churn')) {
    const c = await churn();
    emit(c);
    human.push(
      `(d) churn: ${c.services} services × 1 weight change/s for ${c.seconds} s, ${c.streams} streams (${c.targetsPerNode} services per node)\n` +
        table(
          ['changes/s', 'publishes/s', 'pushes/s', 'route pushes/s', 'server CPU % of a core', 'generator CPU %'],
          [[c.weightChangesPerSec as number, c.publishesPerSec as number, c.pushesPerSec as number, c.routePushesPerSec as number, c.serverCpuPct as number, c.generatorCpuPct as number]],
        ),
    );
  }

  if (scenarios.has('slow')) {
    const s = await slowConsumer();
    emit(s);
    const b = s.baseline as Dist;
    const d = s.withStalledConsumer as Dist;
    human.push(
      `(e) slow consumer: rollback to ${s.streams} streams while one Envoy-like stream stopped reading (${s.changesWhileStalled} changes queued for it; median of ${s.reps} runs)\n` +
        table(
          ['', 'p50', 'p99', 'max'],
          [
            ['all reading', b.p50, b.p99, b.max],
            ['one stalled', d.p50, d.p99, d.max],
            ['ratio', ratio(d.p50, b.p50), s.ratioP99 as number, s.ratioMax as number],
          ],
        ) +
        `\n  server RSS growth while stalled: ${s.serverRssGrowthKiB} KiB; writes to the stalled stream held back: ${s.writesHeldBack} ` +
        `(last sent ${s.slowSentWhileStalled}, current ${s.currentVersion}); caught up with the current version after resume: ${s.slowCaughtUp} (${s.slowCaughtUpMs} ms)`,
    );
  }

  if (scenarios.has('replicas')) {
    const r = await replicasScenario({
      gens,
      streams: Number(opt['replica-streams']),
      reps,
      takeoverReps: Number(opt['takeover-reps'] ?? (opt.quick ? 1 : 3)),
      leaseTtl: opt['lease-ttl'],
      perConn,
      services: serviceCount,
      logLevel: opt['log-level'],
      note,
    });
    emit({ ...r });
    if (r.skipped) human.push(`(h) replicas: skipped, ${r.skipped}`);
    else {
      const a = r.sameReplica!;
      const b = r.otherReplica!;
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
      human.push(
        `(h) replicas: two replicas on a 3-member etcd, ${r.streamsPerReplica} streams on each; rollback through replica A's REST API, ` +
          `ms from the start of the call until each stream has the new RouteConfiguration (for each, the median run of ${r.reps} by max)\n` +
          table(
            ['streams on', 'p50', 'p99', 'max'],
            [
              ['A (the replica called)', a.p50, a.p99, a.max],
              ['B (through etcd)', b.p50, b.p99, b.max],
            ],
          ) +
          `\n  B max − A max in the same run, median over runs: ${r.pairedMaxDiffMs} ms` +
          `\n  leader takeover (kill -9 of the leader → the new leader's first scheduled transition, lease TTL ${r.leaseTtl}): ` +
          `${r.takeoverMs!.join(', ')} ms (median ${median(r.takeoverMs!)}); the pause it ended was due ${r.lateMs!.join(', ')} ms earlier`,
      );
    }
  }

  await Promise.all(gens.map((g) => g.stop()));

  if (scenarios.has('micro')) {
    note('micro: the xDS server in-process, 10000 streams on fake calls');
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('./micro.js', import.meta.url)), '10000', '5'], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.startsWith('BENCH '));
    if (line) {
      const m = JSON.parse(line.slice('BENCH '.length));
      emit(m);
      human.push(
        '(f) micro: src/xds alone (no sockets, no grpc-js), 10000 streams on fake calls, median of 5 rounds\n' +
          table(
            ['fan-out loop µs/stream', 'route ACK µs/stream', 'requests with re-subscription µs/stream', 'decode µs/request', 'translate ms/publish', 'heap B/stream', 'sync µs/stream'],
            [[m.fanoutUsPerStream, m.routeAckUsPerStream, m.ackPathUsPerStream, m.decodeUsPerRequest, m.translateMsPerPublish, m.heapBytesPerStream, m.syncUsPerStream]],
          ),
      );
    }
  }

  if (scenarios.has('delta-names')) {
    note('delta-names: what one delta request costs per resource name, in-process');
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('./delta-names.js', import.meta.url)), '1000,10000,60000'], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.startsWith('BENCH '));
    if (line) {
      const m = JSON.parse(line.slice('BENCH '.length)) as { rows: Record<string, number>[] };
      emit(m);
      human.push(
        '(g) delta-names: src/xds alone, one delta stream on a fake call, median of 3 runs (flat µs/name = work linear in the request)\n' +
          table(
            ['names', 'unknown µs/name', 'known µs/name', 'batches of 1000 µs/name', 'ACK µs'],
            m.rows.map((r) => [r.n!, r.unknownUsPerName!, r.knownUsPerName!, r.batchesUsPerName!, r.ackUs!]),
          ),
      );
    }
  }

  if (scenarios.has('crosscheck')) {
    note('crosscheck: 20 real grpc-js-xds clients and 20 simulated nodes per generator mode follow the same changes');
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('./crosscheck.js', import.meta.url)), '20'], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.startsWith('BENCH '));
    if (line) {
      const m = JSON.parse(line.slice('BENCH '.length)) as { clients: number; types: string; allMatch: boolean; rows: { phase: string; groups: Record<string, { counts: string; nodes: number; of: number }>; match: boolean }[] };
      emit(m);
      const cell = (g: { counts: string; nodes: number; of: number }) => `${g.counts}${g.nodes === g.of ? '' : ` (${g.nodes} of ${g.of})`}`;
      goal('1 generator grpc-js mode ≠ real grpc-js-xds clients (phases that differ)', m.rows.filter((r) => !r.match).length, 0, `${m.clients} clients each`);
      human.push(
        `(j) crosscheck: requests per node and type (${m.types}) each change caused, counted by the server; ${m.clients} real @grpc/grpc-js-xds clients against ${m.clients} simulated nodes per generator mode\n` +
          table(
            ['change', 'real grpc-js-xds', 'generator grpc-js', 'generator batch', 'same'],
            m.rows.map((r) => [r.phase, cell(r.groups.real!), cell(r.groups['gen-grpc-js']!), cell(r.groups['gen-batch']!), r.match ? 'yes' : 'NO']),
          ),
      );
    }
  }

  if (scenarios.has('bytes')) {
    note('bytes: what one change sends each kind of node, in-process, at 1,000 and 10,000 services');
    const sizes = opt['first-byte-services'];
    const out = execFileSync(process.execPath, ['--max-old-space-size=8192', fileURLToPath(new URL('./bytes.js', import.meta.url)), sizes], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = out.split('\n').find((l) => l.startsWith('BENCH '));
    if (line) {
      const m = JSON.parse(line.slice('BENCH '.length)) as { rows: { services: number; routes: string; change: string; bytes: Record<string, number> }[] };
      emit(m);
      const kinds = Object.keys(m.rows[0]?.bytes ?? {});
      const ns = [...new Set(m.rows.map((r) => r.services))];
      const [small, large] = [Math.min(...ns), Math.max(...ns)];
      const pick = (n: number, routes: string, inScope: boolean, kind: string) =>
        m.rows.find((r) => r.services === n && r.routes === routes && r.change.includes('not in the scope') !== inScope)?.bytes[kind] ?? NaN;
      const delta = kinds.find((k) => k.startsWith('Envoy delta (every'))!;
      const scopedNode = kinds.find((k) => k.includes('scoped to'))!;
      goal(`4 Envoy delta, scoped routes: bytes per one-service change at ${large} ÷ at ${small} services`, round(pick(large, 'scoped', true, delta) / pick(small, 'scoped', true, delta), 2), 1.1,
        `${pick(large, 'scoped', true, delta)} B vs ${pick(small, 'scoped', true, delta)} B (single route configuration: ${pick(large, 'single', true, delta)} B)`);
      goal(`3 scoped node (sluice.services): bytes for a change outside its scope at ${large} services`, pick(large, 'single', false, scopedNode), 0, `in scope: ${pick(large, 'single', true, scopedNode)} B`);
      human.push(
        '(k) bytes per change: what one weight step of one service sends each node (all pushes it causes), in-process with the real reconciler and XdsServer\n' +
          table(['services', 'Envoy routes', 'change', ...kinds], m.rows.map((r) => [r.services, r.routes, r.change, ...kinds.map((k) => r.bytes[k]!)])),
      );
    }
  }

  if (scenarios.has('abuse')) {
    note('abuse: REST latency while xDS clients keep hitting the input limits');
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('./abuse.js', import.meta.url)), opt.quick ? '5' : '15', '50'], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.startsWith('BENCH '));
    if (line) {
      const m = JSON.parse(line.slice('BENCH '.length));
      emit(m);
      const refused = Object.values(m.refusedPerSecond as Record<string, number>).reduce((a, b) => a + b, 0);
      human.push(
        `(h) abuse: a real server; 50 xDS streams at a time sending refused requests (10,001 names, 100 kB metadata, an unknown type), ${refused}/s refused\n` +
          table(
            ['REST', 'quiet p50 ms', 'quiet p99 ms', 'abused p50 ms', 'abused p99 ms'],
            [
              ['GET /v1/services', m.quiet.get.p50, m.quiet.get.p99, m.abused.get.p50, m.abused.get.p99],
              ['POST rollback', m.quiet.rollback.p50, m.quiet.rollback.p99, m.abused.rollback.p50, m.abused.rollback.p99],
            ],
          ),
      );
    }
  }

  console.log('\n' + human.join('\n\n'));
  if (goals.length > 0) {
    const sorted = [...goals].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    emit({ scenario: 'goals', goals: sorted.map((g) => ({ ...g, pass: g.value <= g.limit })) });
    console.log(
      '\ngoals (issue 12): figure, limit, pass/fail\n' +
        table(
          ['goal', 'figure', 'limit', 'result', ''],
          sorted.map((g) => [g.name, g.value, g.limit, Number.isFinite(g.value) ? (g.value <= g.limit ? 'PASS' : 'FAIL') : 'n/a', g.detail]),
        ),
    );
  }
  emit({ scenario: 'end', seconds: Math.round((Date.now() - started) / 1000), loadAverage: [loadAtStart, load()] });
  console.log(
    `\n(${Math.round((Date.now() - started) / 1000)} s; ${machine.cpus} cores shared by the server under test, ${workers} generator ` +
      `processes and the orchestrator; 1-min load average ${loadAtStart} at start, ${load()} at end)`,
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    for (const g of gens) g.proc.kill('SIGKILL');
    process.exit(1);
  },
);
