// Load generator process: simulated xDS nodes, each one ADS stream (state of the world) over
// raw HTTP/2 sessions shared by up to `perConn` streams. A gRPC-like node subscribes by name
// (listener → route → clusters → endpoints); an Envoy-like node asks for listeners and clusters
// by wildcard. Every response is ACKed. After the initial sync a response costs a hand parse
// of version/type/nonce; resources are decoded only for a version this process has not seen.
//
// How a gRPC-like node follows a route whose clusters change (`resubscribe`):
//   grpc-js (default) — as @grpc/grpc-js-xds 1.14 does (XdsDependencyManager + XdsClient): the
//     ACK first, then one request per watch started or cancelled, each carrying the whole name
//     list of its type: for a cluster the route no longer names, an EDS request without its
//     endpoints and a CDS request without it; for a new cluster, a CDS request; once a new
//     cluster arrives, an EDS request for its endpoints. A cluster listed at weight 0 is kept.
//   batch — one CDS request with the route's clusters, then one EDS request when the clusters
//     arrive (the generator before this mode existed).
import http2 from 'node:http2';
import { emitEvent, nowMs, serveIpc } from './ipc.js';
import { FieldWriter, GrpcDeframer, RequestField, parseResponseHead } from './wire.js';
import { messageType, TypeUrl, unpackAny } from '../src/xds/protos.js';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const LDS = 0;
const RDS = 1;
const CDS = 2;
const EDS = 3;
const TYPE_URLS = [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment];
const TYPE_INDEX = new Map<string, number>(TYPE_URLS.map((t, i) => [t, i]));
/** The type whose names each type's resources determine (listeners → routes, ...). */
const NEXT = [RDS, CDS, EDS, -1];

export interface StreamSpec {
  nodeId: string;
  flavour: 'grpc' | 'envoy';
  /** gRPC: listener names (dial targets). Envoy: ignored (wildcard). */
  targets: string[];
  /** Own HTTP/2 session with default (64 KiB) flow-control windows: the slow consumer. */
  solo?: boolean;
  /** How a gRPC-like node follows a change of its route's clusters (see the top of this file). */
  resubscribe?: 'grpc-js' | 'batch';
}

// ---------------------------------------------------------------------------------------------
// What a resource version points at, decoded once per process.

const DiscoveryResponse = messageType('envoy.service.discovery.v3.DiscoveryResponse');
const Node = messageType('envoy.config.core.v3.Node');
const refsCache = new Map<string, string[]>();
let decodes = 0;

type Obj = Record<string, any>;

function routeNamesOfListener(l: Obj): string[] {
  const out: string[] = [];
  const hcm = (any: Obj | undefined) => {
    if (!any?.type_url?.endsWith('HttpConnectionManager')) return;
    const name = unpackAny(any as { type_url: string; value: Uint8Array }).rds as Obj | undefined;
    if (name?.route_config_name) out.push(name.route_config_name);
  };
  hcm(l.api_listener?.api_listener);
  for (const fc of l.filter_chains ?? []) for (const f of fc.filters ?? []) hcm(f.typed_config);
  return out;
}

function clusterNamesOfRoute(r: Obj): string[] {
  const out: string[] = [];
  for (const vh of r.virtual_hosts ?? [])
    for (const route of vh.routes ?? []) {
      const a = route.route;
      if (!a) continue;
      if (a.cluster) out.push(a.cluster);
      for (const c of a.weighted_clusters?.clusters ?? []) out.push(c.name);
    }
  return out;
}

function edsNamesOfCluster(c: Obj): string[] {
  return c.type === 'EDS' || c.type === 3 || c.eds_cluster_config ? [c.eds_cluster_config?.service_name || c.name] : [];
}

/** Cluster name → EDS service name, for the clusters of a CDS response (decoded once per version). */
const edsByClusterCache = new Map<string, Map<string, string>>();
function edsByCluster(version: string, msg: Buffer): Map<string, string> {
  let out = edsByClusterCache.get(version);
  if (out) return out;
  decodes++;
  const resp = DiscoveryResponse.decode(msg) as unknown as { resources: { type_url: string; value: Uint8Array }[] };
  out = new Map();
  for (const any of resp.resources) {
    const c = unpackAny(any);
    for (const eds of edsNamesOfCluster(c)) out.set(c.name as string, eds);
  }
  edsByClusterCache.set(version, out);
  return out;
}

/** Names of the next type in the chain that a response refers to (sorted, unique). */
function refsOf(t: number, version: string, msg: Buffer): string[] {
  const key = `${t}\n${version}`;
  let refs = refsCache.get(key);
  if (refs) return refs;
  decodes++;
  const resp = DiscoveryResponse.decode(msg) as unknown as { resources: { type_url: string; value: Uint8Array }[] };
  const names = new Set<string>();
  for (const any of resp.resources) {
    const r = unpackAny(any);
    const found = t === LDS ? routeNamesOfListener(r) : t === RDS ? clusterNamesOfRoute(r) : t === CDS ? edsNamesOfCluster(r) : [];
    for (const n of found) names.add(n);
  }
  refs = [...names].sort();
  refsCache.set(key, refs);
  return refs;
}

// ---------------------------------------------------------------------------------------------

class Session {
  streams = 0;
  closed = false;
  constructor(readonly h2: http2.ClientHttp2Session) {}
}

const counters = { responses: [0, 0, 0, 0], requests: 0, requestsByType: [0, 0, 0, 0], bytesIn: 0, errors: 0 };

class SimStream {
  req: http2.ClientHttp2Stream | undefined;
  deframer = new GrpcDeframer();
  /** Per type: subscribed names (null: not subscribed yet), last accepted version, last nonce. */
  readonly names: (string[] | null)[] = [null, null, null, null];
  readonly version = ['', '', '', ''];
  readonly nonce = ['', '', '', ''];
  readonly awaiting = [false, false, false, false];
  /** grpc-js mode: the clusters whose endpoints are watched, with their EDS service names. */
  readonly edsWatch = new Map<string, string>();
  sentNode = false;
  synced = false;
  syncedAt = NaN;
  openedAt = NaN;
  armedVersion: string | null = null;
  stampAt = NaN;
  lastResponseAt = 0;
  alive = false;
  private readonly nodeBytes: Buffer;

  constructor(
    readonly index: number,
    readonly spec: StreamSpec,
  ) {
    const envoy = spec.flavour === 'envoy';
    this.nodeBytes = Buffer.from(
      Node.encode(
        Node.fromObject({
          id: spec.nodeId,
          cluster: envoy ? 'bench-envoy' : 'bench-grpc',
          locality: { region: 'local', zone: 'a' },
          user_agent_name: envoy ? 'envoy' : 'gRPC Node Pure JS',
          user_agent_version: envoy ? '1.36.0' : '1.14.0',
          client_features: envoy
            ? ['envoy.lb.does_not_support_overprovisioning', 'envoy.lrs.supports_send_all_clusters']
            : ['envoy.lb.does_not_support_overprovisioning'],
        }),
      ).finish(),
    );
  }

  private send(t: number, withNonce: boolean): void {
    if (!this.req || !this.alive) return;
    const w = new FieldWriter().string(RequestField.versionInfo, this.version[t]!);
    if (!this.sentNode) {
      w.bytes(RequestField.node, this.nodeBytes);
      this.sentNode = true;
    }
    w.strings(RequestField.resourceNames, this.names[t]!)
      .string(RequestField.typeUrl, TYPE_URLS[t]!)
      .string(RequestField.nonce, withNonce ? this.nonce[t]! : '');
    counters.requests++;
    counters.requestsByType[t]!++;
    this.req.write(w.finish(true));
  }

  /** Subscribes (or changes the names of) type t. */
  private subscribe(t: number, names: string[], initial: boolean): void {
    this.names[t] = names;
    this.awaiting[t] = true;
    this.synced = false;
    this.send(t, !initial);
  }

  open(session: Session, resubscribe: boolean): void {
    this.sentNode = false;
    this.synced = false;
    this.openedAt = nowMs();
    this.syncedAt = NaN;
    this.nonce.fill('');
    this.awaiting.fill(false);
    if (!resubscribe) this.edsWatch.clear();
    this.deframer = new GrpcDeframer();
    const req = session.h2.request(
      { ':method': 'POST', ':path': ADS_PATH, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    this.req = req;
    this.alive = true;
    req.on('data', (chunk: Buffer) => {
      counters.bytesIn += chunk.length;
      this.deframer.push(chunk, (msg) => this.onResponse(msg));
    });
    const dead = () => {
      if (this.req !== req) return;
      this.alive = false;
      this.req = undefined;
    };
    req.on('error', () => {
      counters.errors++;
      dead();
    });
    req.on('close', dead);
    if (resubscribe && this.names[LDS]) {
      // A reconnecting client asks again for everything it holds, at once, with its versions.
      for (let t = 0; t < 4; t++) if (this.names[t]) this.subscribe(t, this.names[t]!, true);
    } else {
      for (let t = 0; t < 4; t++) {
        this.names[t] = null;
        this.version[t] = '';
      }
      if (this.spec.flavour === 'envoy') {
        this.subscribe(CDS, [], true);
        this.subscribe(LDS, [], true);
      } else this.subscribe(LDS, [...this.spec.targets].sort(), true);
    }
  }

  private onResponse(msg: Buffer): void {
    const head = parseResponseHead(msg);
    const t = TYPE_INDEX.get(head.typeUrl);
    if (t === undefined) return;
    const at = nowMs();
    this.lastResponseAt = at;
    counters.responses[t]!++;
    const changed = head.version !== this.version[t];
    this.version[t] = head.version;
    this.nonce[t] = head.nonce;
    this.awaiting[t] = false;
    if (t === RDS && this.armedVersion !== null && changed && head.version !== this.armedVersion && Number.isNaN(this.stampAt)) {
      this.stampAt = at;
      onStamp();
    }
    this.send(t, true); // ACK
    const next = NEXT[t]!;
    if (this.spec.flavour === 'grpc' && this.spec.resubscribe !== 'batch' && (t === RDS || t === CDS)) {
      if (changed || this.names[next] === null) this.followLikeGrpcJs(t, head.version, msg);
    } else if (next >= 0 && (changed || this.names[next] === null)) {
      const refs = refsOf(t, head.version, msg);
      const wildcard = this.spec.flavour === 'envoy' && next === CDS;
      if (!wildcard && !sameNames(this.names[next], refs)) this.subscribe(next, refs, this.names[next] === null);
    }
    if (!this.synced && this.names.every((n) => n !== null) && !this.awaiting.some((a) => a)) {
      this.synced = true;
      if (Number.isNaN(this.syncedAt)) this.syncedAt = at;
    }
  }

  /** One request per watch started or cancelled, as grpc-js-xds sends them (see the top). */
  private followLikeGrpcJs(t: number, version: string, msg: Buffer): void {
    if (t === RDS) {
      const wanted = refsOf(RDS, version, msg);
      const held = this.names[CDS] ?? [];
      // Removed clusters first (pruneOrphanClusters), each: its endpoints' watch, then its own.
      for (const c of held) {
        if (wanted.includes(c)) continue;
        const eds = this.edsWatch.get(c);
        if (eds !== undefined) {
          this.edsWatch.delete(c);
          this.watch(EDS, (this.names[EDS] ?? []).filter((n) => n !== eds));
        }
        this.watch(CDS, (this.names[CDS] ?? []).filter((n) => n !== c));
      }
      for (const c of wanted) if (!(this.names[CDS] ?? []).includes(c)) this.watch(CDS, [...(this.names[CDS] ?? []), c]);
      return;
    }
    // CDS: each watched cluster that arrived for the first time starts its endpoints' watch.
    for (const [cluster, eds] of edsByCluster(version, msg)) {
      if (this.edsWatch.has(cluster) || !(this.names[CDS] ?? []).includes(cluster)) continue;
      this.edsWatch.set(cluster, eds);
      if (!(this.names[EDS] ?? []).includes(eds)) this.watch(EDS, [...(this.names[EDS] ?? []), eds]);
    }
  }

  /** A request with the type's new name list (the first one of a type carries no nonce). */
  private watch(t: number, names: string[]): void {
    this.subscribe(t, names, this.names[t] === null);
  }

  pause(): void {
    this.req?.pause();
  }

  resume(): void {
    this.req?.resume();
  }
}

function sameNames(a: readonly string[] | null, b: readonly string[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Streams are tagged by the server they talk to, so that Sluice and the floor can be measured
// alternately with both fleets connected.

interface Fleet {
  port: number;
  perConn: number;
  streams: SimStream[];
  sessions: Session[];
  shared?: Session;
}
const fleets = new Map<string, Fleet>();

function fleet(tag: string): Fleet {
  let f = fleets.get(tag);
  if (!f) fleets.set(tag, (f = { port: 0, perConn: 100, streams: [], sessions: [] }));
  return f;
}

function allStreams(tag?: string): SimStream[] {
  if (tag !== undefined) return fleets.get(tag)?.streams ?? [];
  return [...fleets.values()].flatMap((f) => f.streams);
}

function connect(f: Fleet, solo: boolean): Session {
  const h2 = http2.connect(`http://127.0.0.1:${f.port}`, {
    settings: solo ? { enablePush: false } : { enablePush: false, initialWindowSize: 4 << 20 },
    maxSessionMemory: 1000,
  });
  const s = new Session(h2);
  h2.on('connect', () => {
    if (!solo) h2.setLocalWindowSize(64 << 20);
  });
  h2.on('error', () => {
    counters.errors++;
  });
  h2.on('close', () => {
    s.closed = true;
  });
  f.sessions.push(s);
  return s;
}

function sessionFor(f: Fleet, spec: StreamSpec): Session {
  if (spec.solo) return connect(f, true);
  if (!f.shared || f.shared.closed || f.shared.streams >= f.perConn) f.shared = connect(f, false);
  return f.shared;
}

function openAll(f: Fleet, list: SimStream[], resubscribe: boolean): void {
  for (const s of list) {
    const session = sessionFor(f, s.spec);
    session.streams++;
    s.open(session, resubscribe);
  }
}

function closeSessions(f: Fleet): void {
  for (const s of f.sessions) if (!s.closed) s.h2.destroy();
  f.sessions = [];
  f.shared = undefined;
}

function waitUntil(cond: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (cond()) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(tick, everyMs);
    };
    tick();
  });
}

let armedWaiting = 0;
let stampWaiters: (() => void)[] = [];
function onStamp(): void {
  if (--armedWaiting === 0) {
    for (const w of stampWaiters) w();
    stampWaiters = [];
  }
}

const byNode = (list: SimStream[], ids: readonly string[] = []) => {
  const set = new Set(ids);
  return list.filter((s) => !set.has(s.spec.nodeId));
};

serveIpc({
  /** Opens the given streams in batches, each batch waiting for its streams to sync. */
  async open(args: { tag: string; port: number; perConn: number; specs: StreamSpec[]; batch: number; timeoutMs: number }) {
    const f = fleet(args.tag);
    f.port = args.port;
    f.perConn = args.perConn;
    const started = nowMs();
    const fresh = args.specs.map((spec, i) => new SimStream(f.streams.length + i, spec));
    f.streams.push(...fresh);
    for (let i = 0; i < fresh.length; i += args.batch) {
      const batch = fresh.slice(i, i + args.batch);
      openAll(f, batch, false);
      await waitUntil(() => batch.every((s) => s.synced || !s.alive), args.timeoutMs);
    }
    return { opened: fresh.length, synced: fresh.filter((s) => s.synced).length, ms: nowMs() - started };
  },

  /** Server restarted: every stream of the fleet reconnects at once, asking again for what it holds. */
  async reconnect(args: { tag: string; port: number; timeoutMs: number }) {
    const f = fleet(args.tag);
    closeSessions(f);
    f.port = args.port;
    openAll(f, f.streams, true);
    await waitUntil(() => f.streams.every((s) => s.synced), args.timeoutMs);
    return { syncedAt: Float64Array.from(f.streams, (s) => s.syncedAt) };
  },

  /** Notes the current RDS version of each stream of the fleet; the next different one is stamped. */
  arm(args: { tag: string; exclude?: string[] }) {
    armedWaiting = 0;
    stampWaiters = [];
    for (const s of allStreams()) s.armedVersion = null;
    for (const s of byNode(allStreams(args.tag), args.exclude)) {
      s.armedVersion = s.version[RDS]!;
      s.stampAt = NaN;
      armedWaiting++;
    }
    return armedWaiting;
  },

  /** Waits until every armed stream got a new RouteConfiguration; returns the arrival times. */
  async collect(args: { tag: string; timeoutMs: number; exclude?: string[] }) {
    if (armedWaiting > 0)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, args.timeoutMs);
        stampWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    const list = byNode(allStreams(args.tag), args.exclude);
    const stamps = Float64Array.from(list, (s) => s.stampAt);
    for (const s of list) s.armedVersion = null;
    return stamps;
  },

  /** Resolves once every stream is synced and nothing arrived for idleMs. */
  async quiet(args: { tag?: string; idleMs: number; timeoutMs: number; exclude?: string[] }) {
    const list = byNode(allStreams(args.tag), args.exclude);
    const ok = await waitUntil(() => {
      const now = nowMs();
      return list.every((s) => s.synced && now - s.lastResponseAt >= args.idleMs);
    }, args.timeoutMs);
    return { ok, synced: list.filter((s) => s.synced).length, total: list.length };
  },

  status(args: { tag?: string } = {}) {
    const list = allStreams(args?.tag);
    const rds = new Map<string, number>();
    for (const s of list) rds.set(s.version[RDS]!, (rds.get(s.version[RDS]!) ?? 0) + 1);
    return {
      streams: list.length,
      alive: list.filter((s) => s.alive).length,
      synced: list.filter((s) => s.synced).length,
      rdsVersions: Object.fromEntries(rds),
      counters: { ...counters, responses: [...counters.responses] },
      decodes,
      cpu: process.cpuUsage(),
      rss: process.memoryUsage().rss,
    };
  },

  pause(args: { nodeId: string }) {
    for (const s of allStreams()) if (s.spec.nodeId === args.nodeId) s.pause();
  },

  resume(args: { nodeId: string }) {
    for (const s of allStreams()) if (s.spec.nodeId === args.nodeId) s.resume();
  },

  close(args: { tag?: string } = {}) {
    for (const [tag, f] of fleets)
      if (args?.tag === undefined || args.tag === tag) {
        closeSessions(f);
        fleets.delete(tag);
      }
    if (fleets.size === 0) {
      refsCache.clear();
      edsByClusterCache.clear();
    }
    return true;
  },

  exit() {
    for (const f of fleets.values()) closeSessions(f);
    setImmediate(() => process.exit(0));
  },
});

emitEvent('ready', { pid: process.pid });
