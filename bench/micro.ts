// In-process micro-benchmark of the xDS server's own work, without sockets, grpc-js or a load
// generator competing for the CPU: N state-of-the-world streams on fake calls (writes are
// counted, not sent), driven through the real request deserializer and XdsServer/SotwStream.
// It isolates what src/xds costs per stream, so that optimisations can be compared on a busy
// 2-core machine where end-to-end numbers move by ±15 % from run to run.
//   node --expose-gc dist/bench/micro.js [N=10000] [rounds=5]
import type * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { kindOf } from '../src/translate/client-kind.js';
import type { NamedService } from '../src/model/service.js';
import { DEFAULT_ENVOY_LISTENER } from '../src/translate/listeners.js';
import { stableRouting } from '../src/translate/routing.js';
import type { Routing } from '../src/translate/routing.js';
import { translateEnvoy, translateGrpc } from '../src/translate/translate.js';
import { ResourceCache } from '../src/xds/cache.js';
import { messageType, TypeUrl } from '../src/xds/protos.js';
import { SotwStream } from '../src/xds/sotw-stream.js';
import { XdsServer } from '../src/xds/server.js';
import { CANARY_WEIGHT, ROLLBACK_SERVICE, serviceName, serviceSpec } from './fleet.js';
import { FieldWriter, RequestField, parseResponseHead } from './wire.js';
import { round } from './stats.js';

const N = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const SERVICES = 100;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

const services: NamedService[] = Array.from({ length: SERVICES }, (_, i) => ({ name: serviceName(i), ...serviceSpec(i) }));
function routings(canaryWeight: number): Routing[] {
  return services.map((s) =>
    s.name === ROLLBACK_SERVICE && canaryWeight > 0
      ? { service: s, split: [{ version: 'v2', weight: canaryWeight }, { version: 'v1', weight: 100 - canaryWeight }], headerRoutes: [] }
      : stableRouting(s),
  );
}
function publish(cache: ResourceCache, canaryWeight: number): void {
  const r = routings(canaryWeight);
  cache.set('grpc', translateGrpc(r));
  cache.set('envoy', translateEnvoy(r, DEFAULT_ENVOY_LISTENER));
}

// The request deserializer exactly as XdsServer registers it with grpc-js.
const cache = new ResourceCache('micro');
const server = new XdsServer({ cache, log: pino({ level: 'silent' }), groupOf: kindOf });
let deserialize: (b: Buffer) => any = () => undefined;
server.register({
  addService(def: grpc.ServiceDefinition, _impl: unknown) {
    const m = (def as Record<string, grpc.MethodDefinition<unknown, unknown>>).StreamAggregatedResources;
    if (m) deserialize = m.requestDeserialize as (b: Buffer) => any;
  },
} as unknown as grpc.Server);

const REQ = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const encodeReq = (o: object) => Buffer.from(REQ.encode(REQ.fromObject(o)).finish());
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;
const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;

/** Keeps what the server writes; parsed only when the simulated client needs it (untimed). */
class FakeCall {
  writes = 0;
  private pending: Buffer[] = [];
  private readonly seen = new Map<string, { version: string; nonce: string }>();
  write(chunk: Buffer): boolean {
    this.writes++;
    this.pending.push(chunk);
    return true;
  }
  once(): unknown {
    return this;
  }
  last(typeUrl: string): { version: string; nonce: string } {
    for (const chunk of this.pending) {
      const h = parseResponseHead(chunk);
      this.seen.set(h.typeUrl, { version: h.version, nonce: h.nonce });
    }
    this.pending = [];
    return this.seen.get(typeUrl)!;
  }
}

interface Sim {
  stream: SotwStream;
  call: FakeCall;
}

/** Sends one request through the deserializer into the stream. */
function send(sim: Sim, req: object): void {
  sim.stream.onRequest(deserialize(encodeReq(req)));
}

/** ACK of the latest response of a type; optionally with new names (hand-encoded: cheap). */
function ackReq(sim: Sim, typeUrl: string, names: string[]): Buffer {
  const l = sim.call.last(typeUrl);
  return new FieldWriter()
    .string(RequestField.versionInfo, l.version)
    .strings(RequestField.resourceNames, names)
    .string(RequestField.typeUrl, typeUrl)
    .string(RequestField.nonce, l.nonce)
    .finish();
}

const STABLE = ['svc-0-v1'];
const BOTH = ['svc-0-v1', 'svc-0-v2'];

function ms(t0: number): number {
  return performance.now() - t0;
}

async function main(): Promise<void> {
  publish(cache, CANARY_WEIGHT);
  const sims: Sim[] = [];
  gc();
  const heap0 = process.memoryUsage().heapUsed;

  // Connect and sync: LDS by name → RDS → CDS → EDS, each answered and ACKed.
  let t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const call = new FakeCall();
    const sim = { stream: new SotwStream(server, call), call };
    sims.push(sim);
    send(sim, {
      node: { id: `node-${i}`, cluster: 'bench', user_agent_name: 'gRPC Node Pure JS', user_agent_version: '1.14.0', client_features: ['envoy.lb.does_not_support_overprovisioning'] },
      type_url: LDS,
      resource_names: [ROLLBACK_SERVICE],
    });
    sim.stream.onRequest(deserialize(ackReq(sim, LDS, [ROLLBACK_SERVICE])));
    send(sim, { type_url: RDS, resource_names: [ROLLBACK_SERVICE] });
    sim.stream.onRequest(deserialize(ackReq(sim, RDS, [ROLLBACK_SERVICE])));
    send(sim, { type_url: CDS, resource_names: BOTH });
    sim.stream.onRequest(deserialize(ackReq(sim, CDS, BOTH)));
    send(sim, { type_url: EDS, resource_names: BOTH });
    sim.stream.onRequest(deserialize(ackReq(sim, EDS, BOTH)));
  }
  const syncMs = ms(t0);
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const heapPerStream = (process.memoryUsage().heapUsed - heap0) / N;

  const fanout: number[] = [];
  const acks: number[] = [];
  /** The RouteConfiguration ACK alone: all a rollback costs a client that keeps its clusters. */
  const routeAcks: number[] = [];
  const publishMs: number[] = [];
  const decodeUs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Rollback: the route loses the canary. Publishing (translate + cache.set) and the fan-out
    // loop are timed apart: cache.set calls every stream synchronously.
    const r = routings(0);
    t0 = performance.now();
    const grpcResources = translateGrpc(r);
    const envoyResources = translateEnvoy(r, DEFAULT_ENVOY_LISTENER);
    const translated = ms(t0);
    t0 = performance.now();
    cache.set('grpc', grpcResources);
    fanout.push(ms(t0));
    cache.set('envoy', envoyResources);
    publishMs.push(translated);

    // What each client then sends: RDS ACK; CDS with the canary dropped, its ACK; EDS likewise.
    // Only the server's part is timed (the requests are built in between, untimed).
    const reqs = sims.map((sim) => ackReq(sim, RDS, [ROLLBACK_SERVICE]));
    let serverMs = 0;
    const serve = (sim: Sim, buf: Buffer) => {
      const t = performance.now();
      sim.stream.onRequest(deserialize(buf));
      const took = performance.now() - t;
      serverMs += took;
      return took;
    };
    let routeAckMs = 0;
    for (let i = 0; i < N; i++) {
      const sim = sims[i]!;
      routeAckMs += serve(sim, reqs[i]!);
      serve(sim, ackReq(sim, CDS, STABLE));
      serve(sim, ackReq(sim, CDS, STABLE));
      serve(sim, ackReq(sim, EDS, STABLE));
      serve(sim, ackReq(sim, EDS, STABLE));
    }
    acks.push(serverMs);
    routeAcks.push(routeAckMs);

    // Decoding alone (an ACK as the generator sends it).
    const sample = reqs[0]!;
    t0 = performance.now();
    for (let i = 0; i < 100_000; i++) deserialize(sample);
    decodeUs.push(ms(t0) / 100);

    // Back to the canary (untimed) for the next round.
    publish(cache, CANARY_WEIGHT);
    for (const sim of sims) {
      sim.stream.onRequest(deserialize(ackReq(sim, RDS, [ROLLBACK_SERVICE])));
      sim.stream.onRequest(deserialize(ackReq(sim, CDS, BOTH)));
      sim.stream.onRequest(deserialize(ackReq(sim, CDS, BOTH)));
      sim.stream.onRequest(deserialize(ackReq(sim, EDS, BOTH)));
      sim.stream.onRequest(deserialize(ackReq(sim, EDS, BOTH)));
    }
  }
  // Publishing alone (translation of every service for both flavours, as the publisher does
  // on each change): 40 weight changes of one service, streams attached but not timed.
  const translateOnly: number[] = [];
  for (let i = 0; i < 40; i++) {
    const r = routings(i % 2 === 0 ? 0 : CANARY_WEIGHT);
    t0 = performance.now();
    translateGrpc(r);
    translateEnvoy(r, DEFAULT_ENVOY_LISTENER);
    translateOnly.push(ms(t0));
  }
  publishMs.push(...translateOnly);
  const writes = sims.reduce((n, s) => n + s.call.writes, 0);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const result = {
    scenario: 'micro',
    n: N,
    rounds: ROUNDS,
    syncUsPerStream: round((syncMs * 1000) / N, 2),
    heapBytesPerStream: Math.round(heapPerStream),
    fanoutUsPerStream: round((med(fanout) * 1000) / N, 3),
    ackPathUsPerStream: round((med(acks) * 1000) / N, 2),
    routeAckUsPerStream: round((med(routeAcks) * 1000) / N, 2),
    decodeUsPerRequest: round(med(decodeUs), 3),
    translateMsPerPublish: round(med(publishMs), 2),
    writes,
  };
  console.log(`BENCH ${JSON.stringify(result)}`);
  console.log(
    `micro (N=${N}, median of ${ROUNDS}): sync ${result.syncUsPerStream} µs/stream, fan-out loop ${result.fanoutUsPerStream} µs/stream, ` +
      `route ACK ${result.routeAckUsPerStream} µs/stream, rollback requests with re-subscription (5 per stream, incl. 2 pushes) ${result.ackPathUsPerStream} µs/stream, decode ${result.decodeUsPerRequest} µs/request, ` +
      `translate ${result.translateMsPerPublish} ms/publish, heap ${result.heapBytesPerStream} B/stream`,
  );
}

void main();
