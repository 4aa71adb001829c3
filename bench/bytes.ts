// Bytes sent per change, per kind of node: the real reconciler, translation and XdsServer with N
// services declared, and one node of each kind on a fake call (what the server writes is counted,
// not sent). A change is one service's weight step (a rollout to 10%); "other" is the same change
// to a service a scoped node does not ask for.
//   node dist/bench/bytes.js [N,N...=1000,10000]
import type * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { RolloutState } from '../src/model/rollout.js';
import type { NamedService } from '../src/model/service.js';
import { clusterName } from '../src/model/service.js';
import { NodeGroups, SERVICES_METADATA_KEY } from '../src/reconcile/node-groups.js';
import { Reconciler } from '../src/reconcile/reconciler.js';
import { createRollout, transition } from '../src/rollout/machine.js';
import type { DesiredState } from '../src/state/desired-state.js';
import { EnvoyKind } from '../src/translate/envoy.js';
import { ScopedEnvoyKind } from '../src/translate/envoy-scoped.js';
import { GrpcKind } from '../src/translate/grpc.js';
import { DEFAULT_ENVOY_LISTENER } from '../src/translate/listeners.js';
import { Translator } from '../src/translate/translate.js';
import { ResourceCache } from '../src/xds/cache.js';
import { DeltaStream } from '../src/xds/delta-stream.js';
import { messageType, TypeUrl } from '../src/xds/protos.js';
import { XdsServer } from '../src/xds/server.js';
import { SotwStream } from '../src/xds/sotw-stream.js';
import { serviceName, serviceSpec } from './fleet.js';

const SIZES = (process.argv[2] ?? '1000,10000').split(',').map(Number);
const { Listener: LDS, RouteConfiguration: RDS, Cluster: CDS, ClusterLoadAssignment: EDS, ScopedRouteConfiguration: SRDS } = TypeUrl;

/** Counts what the server writes. */
class CountingCall {
  bytes = 0;
  writes = 0;
  write(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    this.writes++;
    return true;
  }
  once(): unknown {
    return this;
  }
}

const REQ = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const DELTA_REQ = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');

/** The node of a request: an Envoy or a gRPC client, optionally scoped to some services. */
function node(id: string, envoy: boolean, services?: string[]): object {
  return {
    id,
    cluster: 'bench',
    user_agent_name: envoy ? 'envoy' : 'gRPC Node Pure JS',
    ...(services ? { metadata: { fields: { [SERVICES_METADATA_KEY]: { stringValue: services.join(',') } } } } : {}),
  };
}

interface Node {
  name: string;
  call: CountingCall;
}

async function world(n: number, envoyRoutes: 'single' | 'scoped') {
  const cache = new ResourceCache('bytes');
  const groups = new NodeGroups();
  const log = pino({ level: 'silent' });
  // A large fleet's Envoy asks for every cluster's endpoints: the limits are raised to let it.
  const server = new XdsServer({ cache, log, groupOf: (nd) => groups.groupOf(nd), limits: { maxNamesPerRequest: 1_000_000, maxSubscribedNamesPerStream: 1_000_000 } });
  const envoyKind = envoyRoutes === 'scoped' ? new ScopedEnvoyKind(DEFAULT_ENVOY_LISTENER) : new EnvoyKind(DEFAULT_ENVOY_LISTENER);
  const reconciler = new Reconciler({ cache, groups, log, translator: new Translator([new GrpcKind(), envoyKind]) });
  server.on('groupActive', (g) => reconciler.activate(g));
  const services = new Map<string, NamedService>(Array.from({ length: n }, (_, i) => [serviceName(i), { name: serviceName(i), ...serviceSpec(i) }]));
  let revision = 0;
  const rollouts = new Map<string, RolloutState>();
  const publish = (changed: string[]) => {
    const state: DesiredState = { revision: ++revision, services, rollouts: new Map(rollouts) };
    reconciler.apply({ state, services: changed, urgent: true });
    return reconciler.whenPublished(revision);
  };
  await publish([...services.keys()]);
  const decodeWith = (deserialize: (b: Buffer) => unknown, type: typeof REQ, body: object) => deserialize(Buffer.from(type.encode(type.fromObject(body)).finish()));
  let deserializeSotw: (b: Buffer) => any = () => undefined;
  let deserializeDelta: (b: Buffer) => any = () => undefined;
  server.register({
    addService(def: grpc.ServiceDefinition) {
      const d = def as Record<string, grpc.MethodDefinition<unknown, unknown>>;
      if (d.StreamAggregatedResources) deserializeSotw = d.StreamAggregatedResources.requestDeserialize as never;
      if (d.DeltaAggregatedResources) deserializeDelta = d.DeltaAggregatedResources.requestDeserialize as never;
    },
  } as unknown as grpc.Server);

  const allClusters = [...services.values()].flatMap((s) => Object.keys(s.versions).map((v) => clusterName(s.name, v, s)));
  /** A state-of-the-world node subscribed to what it needs (responses are not ACKed: pushes do not wait for ACKs). */
  function sotw(name: string, nd: object, subs: [string, string[]][]): Node {
    const call = new CountingCall();
    const stream = new SotwStream(server, call);
    subs.forEach(([type_url, resource_names], i) => stream.onRequest(decodeWith(deserializeSotw, REQ, { ...(i === 0 ? { node: nd } : {}), type_url, resource_names }) as never));
    return { name, call };
  }
  function delta(name: string, nd: object, subs: [string, string[]][]): Node {
    const call = new CountingCall();
    const stream = new DeltaStream(server, call);
    subs.forEach(([type_url, resource_names_subscribe], i) =>
      stream.onRequest(decodeWith(deserializeDelta, DELTA_REQ, { ...(i === 0 ? { node: nd } : {}), type_url, resource_names_subscribe }) as never),
    );
    return { name, call };
  }
  const target = serviceName(0);
  const scope = [target, serviceName(1)];
  const scopedClusters = scope.flatMap((s) => [`${s}-v1`, `${s}-v2`]);
  const envoyRds = envoyRoutes === 'scoped' ? [...services.keys()] : [DEFAULT_ENVOY_LISTENER.name];
  const envoySubs = (clusters: string[], rds: string[]): [string, string[]][] => [
    [CDS, []],
    [EDS, clusters],
    [LDS, []],
    ...(envoyRoutes === 'scoped' ? [[SRDS, []] as [string, string[]]] : []),
    [RDS, rds],
  ];
  const nodes: Node[] = [
    sotw('gRPC (SotW, calls 1 service)', node('g', false), [[LDS, [target]], [RDS, [target]], [CDS, [`${target}-v1`, `${target}-v2`]], [EDS, [`${target}-v1`, `${target}-v2`]]]),
    sotw('Envoy SotW (every service)', node('es', true), envoySubs(allClusters, envoyRds)),
    delta('Envoy delta (every service)', node('ed', true), envoySubs(allClusters, envoyRds)),
    delta(`Envoy delta scoped to ${scope.length} services`, node('sc', true, scope), envoySubs(scopedClusters, envoyRoutes === 'scoped' ? scope : [DEFAULT_ENVOY_LISTENER.name])),
  ];
  /** Bytes each node is sent for a rollout of `service` to 10%. */
  const change = async (service: string): Promise<Record<string, number>> => {
    const before = nodes.map((x) => x.call.bytes);
    rollouts.set(service, createRollout(service, { service, canary: 'v2', steps: [{ setWeight: 10 }] }, 'v1', new Date(0), 'bench'));
    await publish([service]);
    return Object.fromEntries(nodes.map((x, i) => [x.name, x.call.bytes - before[i]!]));
  };
  /** Bytes each node is sent for the rollback of `service`'s rollout. */
  const rollback = async (service: string): Promise<Record<string, number>> => {
    const before = nodes.map((x) => x.call.bytes);
    rollouts.set(service, transition(rollouts.get(service)!, { type: 'rollback' }, new Date(1), 'bench').state);
    await publish([service]);
    return Object.fromEntries(nodes.map((x, i) => [x.name, x.call.bytes - before[i]!]));
  };
  return { change, rollback, target, other: serviceName(5), close: () => reconciler.close() };
}

const rows: { services: number; routes: string; change: string; bytes: Record<string, number> }[] = [];
for (const n of SIZES)
  for (const routes of ['single', 'scoped'] as const) {
    const w = await world(n, routes);
    rows.push({ services: n, routes, change: `weight step of ${w.target}`, bytes: await w.change(w.target) });
    rows.push({ services: n, routes, change: `weight step of ${w.other} (not in the scope)`, bytes: await w.change(w.other) });
    rows.push({ services: n, routes, change: `rollback of ${w.target}`, bytes: await w.rollback(w.target) });
    w.close();
  }
console.log(`BENCH ${JSON.stringify({ scenario: 'bytes', rows })}`);
