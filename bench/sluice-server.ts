// Sluice under test, in its own process so that its RSS and CPU are its own.
//   app   — the whole application (startSluice: REST, rollout engine, file store, xDS).
//   churn — the publishing path without REST and rollout engine: the real Reconciler (debounce),
//           translation and XdsServer, with weights changed by a driver in this process, and a
//           fleet-convergence wait per change as the rollout engine's ACK watch does. (Through
//           REST, weight changes are serialised by the rollout controller; see docs/performance.md.)
import pino from 'pino';
import { ConfigSchema } from '../src/config.js';
import { startSluice } from '../src/main.js';
import type { Sluice } from '../src/main.js';
import type { NamedService } from '../src/model/service.js';
import type { RolloutState } from '../src/model/rollout.js';
import { NodeGroups } from '../src/reconcile/node-groups.js';
import { Reconciler } from '../src/reconcile/reconciler.js';
import { createRollout } from '../src/rollout/machine.js';
import type { DesiredState } from '../src/state/desired-state.js';
import { kindOf } from '../src/translate/client-kind.js';
import { EnvoyKind } from '../src/translate/envoy.js';
import { GrpcKind } from '../src/translate/grpc.js';
import { DEFAULT_ENVOY_LISTENER } from '../src/translate/listeners.js';
import { Translator } from '../src/translate/translate.js';
import { ResourceCache } from '../src/xds/cache.js';
import { XdsServer } from '../src/xds/server.js';
import { serviceName, serviceSpec } from './fleet.js';
import { nowMs, serveIpc } from './ipc.js';
import { cpuSnapshot, measureMemory, profileStart, profileStop } from './child.js';

const [mode = 'app', dataDir = '', logLevel = 'info', servicesArg = '100', envoyRoutes = 'single'] = process.argv.slice(2);
const log = pino({ level: logLevel }); // stdout goes to /dev/null: the cost of logging stays, the noise not

let sluice: Sluice | undefined;
let xds: XdsServer;
let xdsPort: number;
let httpPort = 0;

// -- churn mode -------------------------------------------------------------------------------
const services: NamedService[] = Array.from({ length: Number(servicesArg) }, (_, i) => ({ name: serviceName(i), ...serviceSpec(i) }));
const weights = new Map<string, number>();
let reconciler: Reconciler | undefined;
let revision = 0;

/** The desired state with each service's canary at its current weight. Like the state writer,
 *  a change replaces only its own service's rollout; the others stay the same objects (the
 *  reconciler is told which service changed, and nothing else is rebuilt). */
const rollouts = new Map<string, RolloutState>();
const declared = new Map(services.map((s) => [s.name, s]));
function desired(changed?: string): DesiredState {
  for (const s of changed ? services.filter((x) => x.name === changed) : services) {
    const w = weights.get(s.name) ?? 0;
    if (w === 0) rollouts.delete(s.name);
    else rollouts.set(s.name, createRollout(s.name, { service: s.name, canary: 'v2', steps: [{ setWeight: w }] }, 'v1', new Date(0), 'bench'));
  }
  return { revision: ++revision, services: declared, rollouts: new Map(rollouts) };
}

async function churn(args: { durationMs: number; awaitAcks: boolean }) {
  const start = cpuSnapshot();
  const t0 = performance.now();
  let changes = 0;
  let publishes = 0;
  let awaits = 0;
  const off = xds.cache.onChange((group) => {
    if (group === 'grpc') publishes++;
  });
  const period = 1000;
  const timers: NodeJS.Timeout[] = [];
  const pendingWaits: Promise<unknown>[] = [];
  await new Promise<void>((resolve) => {
    services.forEach((s, i) => {
      // Service i changes at offset i/n of every second.
      const fire = () => {
        if (performance.now() - t0 >= args.durationMs) return;
        weights.set(s.name, ((weights.get(s.name) ?? 0) % 99) + 1);
        changes++;
        reconciler!.apply({ state: desired(s.name), services: [s.name], urgent: false });
        if (args.awaitAcks) {
          awaits++;
          pendingWaits.push(xds.awaitOwner(s.name, { timeoutMs: 10_000 }));
        }
      };
      const first = setTimeout(() => {
        fire();
        timers.push(setInterval(fire, period));
      }, (i * period) / services.length);
      timers.push(first);
    });
    setTimeout(resolve, args.durationMs);
  });
  const end = cpuSnapshot();
  for (const t of timers) clearInterval(t);
  off();
  const wallMs = end.at - start.at;
  const cpuMs = (end.cpu.user - start.cpu.user + end.cpu.system - start.cpu.system) / 1000;
  await Promise.race([Promise.all(pendingWaits), new Promise((r) => setTimeout(r, 2000))]);
  return {
    wallMs,
    cpuMs,
    userMs: (end.cpu.user - start.cpu.user) / 1000,
    systemMs: (end.cpu.system - start.cpu.system) / 1000,
    changes,
    publishes,
    awaits,
  };
}

if (mode === 'app') {
  // An Envoy that routes to every one of 10,000 services asks for 20,000 clusters' endpoints:
  // more than the default bounds on one request and one stream allow.
  const config = ConfigSchema.parse({ xdsPort: 0, httpPort: 0, dataDir, logLevel, xdsMaxNamesPerRequest: 100_000, xdsMaxSubscribedNames: 200_000, envoyRoutes });
  sluice = await startSluice(config, log);
  xds = sluice.xds;
  xdsPort = sluice.xdsPort;
  httpPort = sluice.httpPort;
} else {
  const cache = new ResourceCache(`sluice@${process.pid}`);
  xds = new XdsServer({ cache, log: log.child({ component: 'xds' }), groupOf: kindOf });
  reconciler = new Reconciler({ cache, log, groups: new NodeGroups(), translator: new Translator([new GrpcKind(), new EnvoyKind(DEFAULT_ENVOY_LISTENER)]) });
  reconciler.apply({ state: desired(), services: [], urgent: true });
  xdsPort = await xds.listen('127.0.0.1', 0);
}

// Timing marks around cache.set (which runs the fan-out loop over every stream of the group
// synchronously), on the clock the orchestrator uses: what comes before the loop (REST, store,
// translation), the loop itself, and what holds the loop's writes after it are told apart.
const marks: { group: string; start: number; end: number; changed: number; idle?: number }[] = [];
function marked<A extends unknown[]>(fn: (group: string, ...rest: A) => ReadonlySet<string>): (group: string, ...rest: A) => ReadonlySet<string> {
  return (group, ...rest) => {
    const start = nowMs();
    const changed = fn(group, ...rest);
    if (changed.size > 0) {
      const mark = { group, start, end: nowMs(), changed: changed.size, idle: undefined as number | undefined };
      // HTTP/2 hands queued writes to the socket when the event loop gets to its check phase:
      // whatever runs synchronously after the loop delays every stream.
      setImmediate(() => (mark.idle = nowMs()));
      marks.push(mark);
    }
    if (marks.length > 1000) marks.splice(0, marks.length - 1000);
    return changed;
  };
}
// The reconciler patches the cache; set is kept for anything that replaces a group whole.
xds.cache.set = marked(xds.cache.set.bind(xds.cache));
xds.cache.patch = marked(xds.cache.patch.bind(xds.cache));

serveIpc({
  ports: () => ({ xdsPort, httpPort }),
  marks: () => marks.splice(0),
  mem: () => measureMemory(),
  profileStart,
  profileStop,
  cpu: () => cpuSnapshot(),
  streams: () => xds.connectedStreams,
  churn,
  /** What the server holds about one node's routes (sent and ACKed versions). */
  node: (args: { id: string }) => xds.fleet().find((n) => n.id === args.id) ?? null,
  exit: async () => {
    if (sluice) await sluice.stop();
    else await xds.close(200);
    setImmediate(() => process.exit(0));
  },
});
process.send?.({ event: 'ready', data: { xdsPort, httpPort } });
