// The floor: a bare grpc-js ADS server with no protocol machinery. It answers a request only
// when it opens a type or changes its names (ACKs are dropped unread beyond three scalar
// fields), and a push writes one pre-encoded response (same bytes, same nonce) to every open
// stream. Resources are those Sluice would serve (same translation), encoded at start-up.
// It is the fastest this stack (Node, grpc-js, HTTP/2) can fan out; Sluice is measured
// against it with the same load generator in the same run.
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { NamedService } from '../src/model/service.js';
import { TypeUrl } from '../src/xds/protos.js';
import type { Resource } from '../src/xds/resource.js';
import { hashBytes } from '../src/xds/resource.js';
import { translateEnvoy, translateGrpc } from '../src/translate/translate.js';
import { stableRouting } from '../src/translate/routing.js';
import type { Routing } from '../src/translate/routing.js';
import { DEFAULT_ENVOY_LISTENER } from '../src/translate/listeners.js';
import { FieldWriter, parseRequestHead } from './wire.js';
import { CANARY_WEIGHT, ROLLBACK_SERVICE, STEP_WEIGHT, serviceName, serviceSpec } from './fleet.js';
import { nowMs, serveIpc } from './ipc.js';
import { cpuSnapshot, measureMemory, profileStart, profileStop } from './child.js';

const services = Number(process.argv[2] ?? 100);
const GROUPS = ['grpc', 'envoy'] as const;
type Group = (typeof GROUPS)[number];

const named: NamedService[] = Array.from({ length: services }, (_, i) => ({ name: serviceName(i), ...serviceSpec(i) }));

/** Sluice's routing of each service: the canary of the rollback service at a weight, or (0)
 *  rolled back, which keeps the canary in gRPC routes at weight 0 (routing-of.ts). */
function routings(canaryWeight: number): Routing[] {
  return named.map((s) => {
    if (s.name !== ROLLBACK_SERVICE) return stableRouting(s);
    if (canaryWeight === 0) return { ...stableRouting(s), held: ['v2'] };
    return { service: s, split: [{ version: 'v2', weight: canaryWeight }, { version: 'v1', weight: 100 - canaryWeight }], headerRoutes: [] };
  });
}

/** Per canary weight: group → type URL → resources; translated and encoded at start-up. */
const states = new Map<number, Map<Group, Record<string, Resource[]>>>();
let resources = new Map<Group, Record<string, Resource[]>>();
let bodies = new Map<string, Buffer>();
const bodiesByState = new Map<number, Map<string, Buffer>>();

function translate(canaryWeight: number): Map<Group, Record<string, Resource[]>> {
  const r = routings(canaryWeight);
  return new Map<Group, Record<string, Resource[]>>([
    ['grpc', translateGrpc(r)],
    ['envoy', translateEnvoy(r, DEFAULT_ENVOY_LISTENER)],
  ]);
}

/** Switches to the state at a canary weight, translating it the first time (before a timed push). */
function select(canaryWeight: number): void {
  if (!states.has(canaryWeight)) {
    states.set(canaryWeight, translate(canaryWeight));
    bodiesByState.set(canaryWeight, new Map());
  }
  resources = states.get(canaryWeight)!;
  bodies = bodiesByState.get(canaryWeight)!;
}

/** The pre-encoded response for a group, type and subscription (memoized). */
function body(group: Group, typeUrl: string, key: string): Buffer {
  const k = `${group}\n${typeUrl}\n${key}`;
  let b = bodies.get(k);
  if (!b) {
    const all = resources.get(group)?.[typeUrl] ?? [];
    const wanted = key === '*' ? all : all.filter((r) => key.split('\n').includes(r.name));
    const version = `floor-${hashBytes(typeUrl, ...wanted.map((r) => `${r.name}\0${r.version}`))}`;
    const w = new FieldWriter().string(1, version);
    for (const r of wanted) w.bytes(2, r.any);
    b = w.string(4, typeUrl).string(5, 'floor').finish();
    bodies.set(k, b);
  }
  return b;
}

interface FloorCall {
  call: grpc.ServerDuplexStream<Buffer, Buffer>;
  group: Group;
  keys: Map<string, string>;
}
const calls = new Set<FloorCall>();

const identity = (b: Buffer) => b;
const server = new grpc.Server({
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_concurrent_streams': 100_000,
});
server.addService(
  {
    StreamAggregatedResources: {
      path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const c: FloorCall = { call, group: 'grpc', keys: new Map() };
      let first = true;
      calls.add(c);
      call.on('data', (buf: Buffer) => {
        const head = parseRequestHead(buf);
        if (first) {
          first = false;
          if (head.userAgent === 'envoy') c.group = 'envoy';
        }
        const wildcard = head.names.length === 0 && (head.typeUrl === TypeUrl.Listener || head.typeUrl === TypeUrl.Cluster);
        const key = wildcard ? '*' : head.names.sort().join('\n');
        if (head.nonce !== '' && c.keys.get(head.typeUrl) === key) return; // an ACK
        c.keys.set(head.typeUrl, key);
        call.write(body(c.group, head.typeUrl, key));
      });
      const end = () => calls.delete(c);
      call.on('end', () => {
        call.end();
        end();
      });
      call.on('error', end);
      call.on('close', end);
      call.on('cancelled', end);
    },
  },
);

/** The push: every stream subscribed to routes gets the new RouteConfiguration. */
const marks: { group: string; start: number; end: number; changed: number; idle?: number }[] = [];

function push(canaryWeight: number): number {
  const start = nowMs();
  select(canaryWeight);
  let n = 0;
  for (const c of calls) {
    const key = c.keys.get(TypeUrl.RouteConfiguration);
    if (key === undefined) continue;
    c.call.write(body(c.group, TypeUrl.RouteConfiguration, key));
    n++;
  }
  const mark = { group: 'grpc', start, end: nowMs(), changed: 1, idle: undefined as number | undefined };
  // HTTP/2 hands queued writes to the socket when the event loop gets to its check phase.
  setImmediate(() => (mark.idle = nowMs()));
  marks.push(mark);
  if (marks.length > 1000) marks.splice(0, marks.length - 1000);
  return n;
}

// Pre-encode the route responses of the states the bench pushes for the subscription every
// bench node has (the weight step goes from CANARY_WEIGHT to STEP_WEIGHT).
for (const w of [CANARY_WEIGHT, STEP_WEIGHT, 0]) {
  select(w);
  body('grpc', TypeUrl.RouteConfiguration, ROLLBACK_SERVICE);
  body('envoy', TypeUrl.RouteConfiguration, DEFAULT_ENVOY_LISTENER.name);
}
select(0);

const api = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  req.resume();
  req.on('end', () => {
    if (req.method === 'POST' && url.pathname === '/push') {
      const weight = Number(url.searchParams.get('weight') ?? 0);
      const n = push(weight);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ streams: n }));
    } else res.writeHead(404).end();
  });
});

const xdsPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
const httpPort = (api.address() as { port: number }).port;

serveIpc({
  ports: () => ({ xdsPort, httpPort, weight: CANARY_WEIGHT }),
  marks: () => marks.splice(0),
  mem: () => measureMemory(),
  profileStart,
  profileStop,
  cpu: () => cpuSnapshot(),
  streams: () => calls.size,
  exit: () => {
    setImmediate(() => process.exit(0));
  },
});
process.send?.({ event: 'ready', data: { xdsPort, httpPort } });
