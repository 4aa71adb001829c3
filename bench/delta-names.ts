// What one delta xDS request costs the server per resource name, in-process (no sockets, no
// grpc-js): requests go through the real request deserializer into a DeltaStream on a fake
// call, as in micro.ts. Untrusted clients choose how many names they send, so this cost must
// stay flat as the count grows (linear work per request), not grow with it.
//   node dist/bench/delta-names.js [sizes=1000,10000,60000]
// Cases, each on a fresh stream (µs per name = case time / names):
//   unknown    one request subscribing N names the cache does not have (all answered removed)
//   known      one request subscribing N names the cache has (one response carrying N resources)
//   batches    N unknown names subscribed 1,000 per request (delta accumulates), whole run
//   ack        one ACK on a stream subscribed to N names (µs for the request, not per name)
// Each figure is the median of three runs.
import type * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { ResourceCache } from '../src/xds/cache.js';
import { DeltaStream } from '../src/xds/delta-stream.js';
import { encodeMessage, messageType, TypeUrl } from '../src/xds/protos.js';
import type { Resource } from '../src/xds/resource.js';
import { makeResource } from '../src/xds/resource.js';
import { XdsServer } from '../src/xds/server.js';
import { round } from './stats.js';

const SIZES = (process.argv[2] ?? '1000,10000,60000').split(',').map(Number);
const BATCH = 1000;
const GROUP = 'g';
const CDS = TypeUrl.Cluster;
const MAX = Math.max(...SIZES);

const cache = new ResourceCache('bench');
// Limits high enough for the largest case: this measures the work, not the refusal.
const options = {
  cache,
  log: pino({ level: 'silent' }),
  groupOf: () => GROUP,
  limits: { maxNamesPerRequest: MAX, maxSubscribedNamesPerStream: 2 * MAX, maxRequestBytes: 64 << 20 },
};
const server = new XdsServer(options as ConstructorParameters<typeof XdsServer>[0]);
let deserialize: (b: Buffer) => any = () => undefined;
server.register({
  addService(def: grpc.ServiceDefinition) {
    const m = (def as Record<string, grpc.MethodDefinition<unknown, unknown>>).DeltaAggregatedResources;
    if (m) deserialize = m.requestDeserialize as (b: Buffer) => any;
  },
} as unknown as grpc.Server);

const DELTA_REQ = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const encode = (o: object) => Buffer.from(DELTA_REQ.encode(DELTA_REQ.fromObject(o)).finish());

/** Remembers the nonce of the last response (enough to ACK it). */
class FakeCall {
  writes = 0;
  bytes = 0;
  lastNonce = '';
  write(chunk: Buffer): boolean {
    this.writes++;
    this.bytes += chunk.length;
    this.lastNonce = nonceOf(chunk);
    return true;
  }
  once(): unknown {
    return this;
  }
  on(): unknown {
    return this;
  }
}

const DELTA_RESP = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
function nonceOf(chunk: Buffer): string {
  return (DELTA_RESP.decode(chunk) as unknown as { nonce: string }).nonce;
}

let streams = 0;
function open(): { stream: DeltaStream; call: FakeCall; send(req: object): number } {
  const call = new FakeCall();
  const stream = new DeltaStream(server, call as never);
  const node = { id: `bench-${++streams}`, cluster: 'bench' };
  let first = true;
  return {
    stream,
    call,
    /** Sends one request; returns the server's time for it in ms (decode + handling). */
    send(req: object) {
      const buf = encode(first ? { node, ...req } : req);
      first = false;
      const t0 = performance.now();
      stream.onRequest(deserialize(buf));
      return performance.now() - t0;
    },
  };
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function cluster(name: string): Resource {
  return makeResource(CDS, name, encodeMessage('envoy.config.cluster.v3.Cluster', { name, type: 'EDS', connect_timeout: { seconds: 1 } }));
}

function measure(n: number): Record<string, number> {
  const known = names('known', n);
  cache.set(GROUP, { [CDS]: known.map(cluster) });

  const a = open();
  const unknownMs = a.send({ type_url: CDS, resource_names_subscribe: names('unknown', n) });
  const ackMs = a.send({ type_url: CDS, response_nonce: a.call.lastNonce });
  a.stream.close();

  const b = open();
  const knownMs = b.send({ type_url: CDS, resource_names_subscribe: known });
  b.stream.close();

  const c = open();
  let batchesMs = 0;
  const all = names('batch', n);
  for (let i = 0; i < n; i += BATCH) {
    batchesMs += c.send({ type_url: CDS, resource_names_subscribe: all.slice(i, i + BATCH) });
    batchesMs += c.send({ type_url: CDS, response_nonce: c.call.lastNonce });
  }
  c.stream.close();

  const perName = (ms: number) => round((ms * 1000) / n, 2);
  return {
    n,
    unknownUsPerName: perName(unknownMs),
    unknownMs: round(unknownMs, 1),
    knownUsPerName: perName(knownMs),
    batchesUsPerName: perName(batchesMs),
    ackUs: round(ackMs * 1000, 0),
  };
}

/** The median of three runs, per field. */
function median3(n: number): Record<string, number> {
  const runs = [measure(n), measure(n), measure(n)];
  const out: Record<string, number> = {};
  for (const k of Object.keys(runs[0]!)) out[k] = runs.map((r) => r[k]!).sort((x, y) => x - y)[1]!;
  return out;
}

function main(): void {
  for (let i = 0; i < 3; i++) measure(Math.min(...SIZES)); // warm-up (JIT)
  const rows = SIZES.map(median3);
  console.log(`BENCH ${JSON.stringify({ scenario: 'delta-names', rows })}`);
  console.log('names   unknown µs/name (ms)   known µs/name   batches of 1000 µs/name   ACK µs');
  for (const r of rows)
    console.log(
      `${String(r.n).padEnd(7)} ${`${r.unknownUsPerName} (${r.unknownMs})`.padEnd(22)} ${String(r.knownUsPerName).padEnd(15)} ${String(r.batchesUsPerName).padEnd(25)} ${r.ackUs}`,
    );
}

main();
