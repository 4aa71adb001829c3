// The gRPC face of the xDS cache: ADS (state of the world and delta) and the per-type
// discovery services, plus the fleet's status. Knows nothing of services or rollouts.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ResourceCache } from './cache.js';
import { WILDCARD } from './cache.js';
import type { XdsNode } from './node.js';
import { TypeUrl } from './protos.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './requests.js';
import type { DeltaDiscoveryRequest } from './delta-stream.js';
import { DeltaStream } from './delta-stream.js';
import type { DiscoveryRequest } from './sotw-stream.js';
import { SotwStream } from './sotw-stream.js';
import type { Convergence, Nack, StreamHost, TypeStatus } from './stream.js';
import { ProtocolError, XdsStream } from './stream.js';
import { Field, bytesField } from './wire.js';
import { nodeFromRequest } from './node.js';

const REQ = 'envoy.service.discovery.v3.DiscoveryRequest';
const DELTA_REQ = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';

/** Requests are decoded by hand (requests.ts): every ACK is one, and protobufjs' toObject was
 *  the largest cost of handling it. The objects are the same as toObject gave. */
const DECODERS: Record<string, (buf: Buffer) => unknown> = {
  [REQ]: decodeDiscoveryRequest,
  [DELTA_REQ]: decodeDeltaDiscoveryRequest,
};

function decoder<T>(typeName: string): (buf: Buffer) => T {
  const decode = DECODERS[typeName];
  if (!decode) throw new Error(`no decoder for ${typeName}`);
  return decode as (buf: Buffer) => T;
}
const identity = (b: Buffer) => b;

function bidi<Req>(service: string, method: string, requestType: string): grpc.MethodDefinition<Req, Buffer> {
  return {
    path: `/${service}/${method}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: () => Buffer.alloc(0), // server side: never used
    requestDeserialize: decoder<Req>(requestType),
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

function unary<Req>(service: string, method: string, requestType: string): grpc.MethodDefinition<Req, Buffer> {
  return { ...bidi<Req>(service, method, requestType), requestStream: false, responseStream: false };
}

/** Per-type discovery services: package, name stem and the one type they serve. */
const PER_TYPE = [
  { service: 'envoy.service.listener.v3.ListenerDiscoveryService', stem: 'Listeners', typeUrl: TypeUrl.Listener },
  { service: 'envoy.service.route.v3.RouteDiscoveryService', stem: 'Routes', typeUrl: TypeUrl.RouteConfiguration },
  { service: 'envoy.service.cluster.v3.ClusterDiscoveryService', stem: 'Clusters', typeUrl: TypeUrl.Cluster },
  { service: 'envoy.service.endpoint.v3.EndpointDiscoveryService', stem: 'Endpoints', typeUrl: TypeUrl.ClusterLoadAssignment },
] as const;

export interface NodeStatus {
  id: string;
  cluster: string;
  userAgent: string;
  group: string;
  clientFeatures: readonly string[];
  connectedSince: string;
  streams: { id: number; flavour: 'sotw' | 'delta'; connectedSince: string }[];
  types: Record<string, Omit<TypeStatus, 'typeUrl'>>;
}

export interface NodeConvergence {
  node: string;
  stream: number;
  state: Convergence | 'disconnected';
  /** Milliseconds from the start of the wait until the node acknowledged. */
  ms: number | null;
  message?: string;
}

/** One running awaitConvergence: the streams it still waits for, and what to do on news. */
interface ConvergenceWait {
  readonly waiting: ReadonlySet<XdsStream>;
  onEvent(stream: XdsStream): void;
  onGone(stream: XdsStream): void;
}

export interface XdsServerOptions {
  cache: ResourceCache;
  log: Logger;
  /** Which group of the cache a node is served from (e.g. Envoy vs proxyless gRPC). */
  groupOf: (node: XdsNode) => string;
}

export interface XdsServerEvents {
  ack: [stream: XdsStream, typeUrl: string, version: string];
  nack: [stream: XdsStream, typeUrl: string, nack: Nack];
  connect: [stream: XdsStream];
  disconnect: [stream: XdsStream];
}

export class XdsServer extends EventEmitter<XdsServerEvents> implements StreamHost {
  readonly cache: ResourceCache;
  readonly log: Logger;
  readonly groupOf: (node: XdsNode) => string;
  private readonly streams = new Set<XdsStream>();
  private readonly attachedStreams = new Set<XdsStream>();
  /** Running awaitConvergence calls. */
  private readonly waits = new Set<ConvergenceWait>();
  /** Attached streams by cache group: a change to one group visits only its streams. */
  private readonly streamsByGroup = new Map<string, Set<XdsStream>>();
  private server?: grpc.Server;

  constructor(opts: XdsServerOptions) {
    super();
    this.setMaxListeners(0);
    this.cache = opts.cache;
    this.log = opts.log;
    this.groupOf = opts.groupOf;
    this.cache.onChange((group, types) => {
      const streams = this.streamsByGroup.get(group);
      if (streams) for (const s of streams) s.onCacheChange(group, types);
    });
  }

  /** Adds ADS and the per-type services to a gRPC server (telemetry services may share it). */
  register(server: grpc.Server): void {
    const ads = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
    server.addService(
      {
        StreamAggregatedResources: bidi<DiscoveryRequest>(ads, 'StreamAggregatedResources', REQ),
        DeltaAggregatedResources: bidi<DeltaDiscoveryRequest>(ads, 'DeltaAggregatedResources', DELTA_REQ),
      },
      {
        StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.serveSotw(call),
        DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => this.serveDelta(call),
      },
    );
    for (const { service, stem, typeUrl } of PER_TYPE) {
      server.addService(
        {
          [`Stream${stem}`]: bidi<DiscoveryRequest>(service, `Stream${stem}`, REQ),
          [`Delta${stem}`]: bidi<DeltaDiscoveryRequest>(service, `Delta${stem}`, DELTA_REQ),
          [`Fetch${stem}`]: unary<DiscoveryRequest>(service, `Fetch${stem}`, REQ),
        },
        {
          [`Stream${stem}`]: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.serveSotw(call, typeUrl),
          [`Delta${stem}`]: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => this.serveDelta(call, typeUrl),
          [`Fetch${stem}`]: (call: grpc.ServerUnaryCall<DiscoveryRequest, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
            this.fetch(call.request, typeUrl, cb),
        },
      );
    }
  }

  private serveSotw(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>, onlyType?: string): void {
    this.serve(call, new SotwStream(this, call, onlyType), (s, req) => (s as SotwStream).onRequest(req));
  }

  private serveDelta(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>, onlyType?: string): void {
    this.serve(call, new DeltaStream(this, call, onlyType), (s, req) => (s as DeltaStream).onRequest(req));
  }

  private serve<Req>(
    call: grpc.ServerDuplexStream<Req, Buffer>,
    stream: XdsStream,
    handle: (s: XdsStream, req: Req) => void,
  ): void {
    this.streams.add(stream);
    let ended = false;
    const end = (err?: grpc.ServiceError | Error) => {
      if (ended) return;
      ended = true;
      stream.close();
      this.streams.delete(stream);
      if (this.attachedStreams.delete(stream)) {
        this.streamsByGroup.get(stream.group)?.delete(stream);
        this.log.info({ node: stream.node?.id, stream: stream.id, err: err?.message }, 'xds stream closed');
        this.emit('disconnect', stream);
        for (const w of this.waits) w.onGone(stream);
      }
    };
    call.on('data', (req: Req) => {
      try {
        handle(stream, req);
      } catch (err) {
        const e = err instanceof ProtocolError ? err : new ProtocolError(grpc.status.INTERNAL, String(err));
        if (!(err instanceof ProtocolError)) this.log.error({ err, stream: stream.id }, 'xds request failed');
        // grpc-js sends a status for an emitted error; a destroyed call would just hang open.
        call.emit('error', { code: e.code, details: e.message });
        end(e);
      }
    });
    call.on('end', () => {
      call.end();
      end();
    });
    call.on('error', (err) => end(err));
    call.on('close', () => end());
    call.on('cancelled', () => end());
  }

  private fetch(req: DiscoveryRequest, typeUrl: string, cb: grpc.sendUnaryData<Buffer>): void {
    if (!req.node?.id) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'node.id is required' });
    const group = this.groupOf(nodeFromRequest(req.node));
    const names = req.resource_names ?? [];
    const view = this.cache.view(group, typeUrl, names.length === 0 || names.includes('*') ? WILDCARD : new Set(names));
    if (req.version_info && req.version_info === view.version)
      return cb({ code: grpc.status.UNAVAILABLE, details: 'not modified' });
    cb(null, Buffer.concat([view.body, bytesField(Field.response.nonce, 'fetch')]));
  }

  // StreamHost
  attached(stream: XdsStream): void {
    this.attachedStreams.add(stream);
    let group = this.streamsByGroup.get(stream.group);
    if (!group) this.streamsByGroup.set(stream.group, (group = new Set()));
    group.add(stream);
    this.log.info(
      { node: stream.node?.id, cluster: stream.node?.cluster, userAgent: stream.node?.userAgentName, group: stream.group, flavour: stream.flavour, stream: stream.id },
      'xds stream opened',
    );
    this.emit('connect', stream);
  }

  acked(stream: XdsStream, typeUrl: string, version: string): void {
    this.emit('ack', stream, typeUrl, version);
    this.notifyWaits(stream);
  }

  /** An ACK or NACK may settle convergence waits: one loop over the waits (each a Set lookup),
   *  where one event listener per wait cost an emitter array copy and a call per wait. */
  private notifyWaits(stream: XdsStream): void {
    if (this.waits.size === 0) return;
    for (const w of this.waits) if (w.waiting.has(stream)) w.onEvent(stream);
  }

  nacked(stream: XdsStream, typeUrl: string, nack: Nack): void {
    this.log.warn({ node: stream.node?.id, typeUrl, version: nack.version, message: nack.message }, 'xds NACK');
    this.emit('nack', stream, typeUrl, nack);
    this.notifyWaits(stream);
  }

  /** Every connected node (several streams of one node id are merged). */
  fleet(): NodeStatus[] {
    const byId = new Map<string, NodeStatus>();
    for (const s of this.attachedStreams) {
      const node = s.node!;
      let entry = byId.get(node.id);
      if (!entry) {
        entry = {
          id: node.id,
          cluster: node.cluster,
          userAgent: `${node.userAgentName}${node.userAgentVersion ? '/' + node.userAgentVersion : ''}`,
          group: s.group,
          clientFeatures: node.clientFeatures,
          connectedSince: s.connectedAt.toISOString(),
          streams: [],
          types: {},
        };
        byId.set(node.id, entry);
      }
      if (s.connectedAt.toISOString() < entry.connectedSince) entry.connectedSince = s.connectedAt.toISOString();
      entry.streams.push({ id: s.id, flavour: s.flavour, connectedSince: s.connectedAt.toISOString() });
      for (const { typeUrl, ...rest } of s.status()) entry.types[typeUrl] = rest;
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  get connectedStreams(): number {
    return this.attachedStreams.size;
  }

  /**
   * Waits until every stream connected now holds (ACKed) the current version of `typeUrl`,
   * or rejected it, or the timeout passes; reports each stream.
   */
  async awaitConvergence(typeUrl: string, timeoutMs: number): Promise<NodeConvergence[]> {
    const started = performance.now();
    const results = new Map<XdsStream, NodeConvergence>();
    const waiting = new Set<XdsStream>();
    const check = (s: XdsStream) => {
      const state = s.convergence(typeUrl);
      if (state === 'pending') return;
      const nack = s.types.get(typeUrl)?.lastNack;
      results.set(s, {
        node: s.node!.id,
        stream: s.id,
        state,
        ms: Math.round(performance.now() - started),
        ...(state === 'rejected' && nack ? { message: nack.message } : {}),
      });
      waiting.delete(s);
    };
    for (const s of this.attachedStreams) {
      waiting.add(s);
      check(s);
    }
    if (waiting.size > 0) {
      await new Promise<void>((resolve) => {
        const wait: ConvergenceWait = {
          waiting,
          onEvent: (s) => {
            check(s);
            if (waiting.size === 0) done();
          },
          onGone: (s) => {
            if (!waiting.delete(s)) return;
            results.set(s, { node: s.node!.id, stream: s.id, state: 'disconnected', ms: null });
            if (waiting.size === 0) done();
          },
        };
        const timer = setTimeout(() => done(), timeoutMs);
        const done = () => {
          clearTimeout(timer);
          this.waits.delete(wait);
          resolve();
        };
        this.waits.add(wait);
      });
    }
    for (const s of waiting) results.set(s, { node: s.node!.id, stream: s.id, state: 'pending', ms: null });
    return [...results.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.stream - b.stream));
  }

  async listen(host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    const server = new grpc.Server({
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_concurrent_streams': 100_000,
    });
    this.register(server);
    this.server = server;
    return this.bind(server, host, port, credentials);
  }

  /** Binds an already-registered server (main.ts adds telemetry services to the same one). */
  bind(server: grpc.Server, host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
    this.server = server;
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) =>
      server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
  }

  /** Stops accepting streams and ends the open ones (clients reconnect elsewhere). */
  async close(graceMs = 2000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
