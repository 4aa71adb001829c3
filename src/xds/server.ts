// The gRPC face of the xDS cache: ADS (state of the world and delta) and the per-type
// discovery services, plus the fleet's status. Knows nothing of services or rollouts.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ResourceCache } from './cache.js';
import { WILDCARD } from './cache.js';
import type { AwaitOwnerOptions, OwnerStatus, OwnerWaitResult } from './fleet.js';
import { Fleet } from './fleet.js';
import type { XdsLimits } from './limits.js';
import { checkNode, checkRequestNames, grpcServerOptions, resolveLimits } from './limits.js';
import type { XdsNode } from './node.js';
import { TypeUrl } from './protos.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './requests.js';
import type { DeltaDiscoveryRequest } from './delta-stream.js';
import { DeltaStream } from './delta-stream.js';
import type { ServiceName } from './services.js';
import { methodsOf, Service, serviceDefinition } from './services.js';
import type { DiscoveryRequest } from './sotw-stream.js';
import { SotwStream } from './sotw-stream.js';
import type { Nack, StreamHost, TypeStatus } from './stream.js';
import { cacheChange, ProtocolError, XdsStream } from './stream.js';
import { Field, bytesField } from './wire.js';
import { nodeFromRequest } from './node.js';
import type { XdsPeer } from './peer.js';
import { peerOf } from './peer.js';

/** Why the server ends a stream (see XdsServer.endStreams). */
export interface StreamEnding {
  code: grpc.status;
  message: string;
}

/** The discovery services and the one type each serves (ADS: every type). */
const DISCOVERY: readonly { service: ServiceName; typeUrl?: string }[] = [
  { service: Service.ads },
  { service: Service.listeners, typeUrl: TypeUrl.Listener },
  { service: Service.routes, typeUrl: TypeUrl.RouteConfiguration },
  { service: Service.clusters, typeUrl: TypeUrl.Cluster },
  { service: Service.endpoints, typeUrl: TypeUrl.ClusterLoadAssignment },
];

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

export interface XdsServerOptions {
  cache: ResourceCache;
  log: Logger;
  /** Which group of the cache a node is served from (e.g. Envoy vs proxyless gRPC, or what the
   *  peer may read). */
  groupOf: (node: XdsNode, peer: XdsPeer) => string;
  /** Why `node` may not be served to `peer`, or undefined when it may: asked on a stream's first
   *  request (a refusal ends it with PERMISSION_DENIED and this message) and on every Fetch.
   *  Default: everyone may. */
  authorize?: (node: XdsNode, peer: XdsPeer) => string | undefined;
  /** Bounds on untrusted input; each unset one takes its default (limits.ts, DEFAULT_LIMITS). */
  limits?: Partial<XdsLimits>;
}

export interface XdsServerEvents {
  ack: [stream: XdsStream, typeUrl: string, version: string];
  nack: [stream: XdsStream, typeUrl: string, nack: Nack];
  connect: [stream: XdsStream];
  disconnect: [stream: XdsStream];
  /** The first stream of a cache group attached (the group is in use). */
  groupActive: [group: string];
  /** The last stream of a cache group went away. */
  groupIdle: [group: string];
}

export class XdsServer extends EventEmitter<XdsServerEvents> implements StreamHost {
  readonly cache: ResourceCache;
  readonly log: Logger;
  readonly groupOf: (node: XdsNode, peer: XdsPeer) => string;
  private readonly authorizer?: (node: XdsNode, peer: XdsPeer) => string | undefined;
  readonly limits: Readonly<XdsLimits>;
  private readonly fleetIndex = new Fleet();
  private readonly streams = new Set<XdsStream>();
  private readonly attachedStreams = new Set<XdsStream>();
  /** Attached streams by cache group: a change to one group visits only its streams. */
  private readonly streamsByGroup = new Map<string, Set<XdsStream>>();
  private server?: grpc.Server;

  constructor(opts: XdsServerOptions) {
    super();
    this.setMaxListeners(0);
    this.cache = opts.cache;
    this.log = opts.log;
    this.groupOf = opts.groupOf;
    this.authorizer = opts.authorize;
    this.limits = resolveLimits(opts.limits);
    this.cache.onChange((group, types, owners, attached) => {
      const streams = this.streamsByGroup.get(group);
      if (streams) {
        const change = cacheChange(group, types, attached);
        for (const s of streams) s.onCacheChange(change);
      }
      if (owners.size > 0) this.fleetIndex.cacheChanged(owners);
    });
  }

  /** Options for the grpc-js Server carrying these services (main.ts builds its own server). */
  grpcServerOptions(): Record<string, number> {
    return grpcServerOptions(this.limits);
  }

  /** Adds ADS and the per-type services to a gRPC server (telemetry services may share it).
   *  Method definitions come from the protos (services.ts); requests are decoded by hand. */
  register(server: grpc.Server): void {
    for (const { service, typeUrl } of DISCOVERY) {
      const decoders: Record<string, (buf: Buffer) => unknown> = {};
      const handlers: grpc.UntypedServiceImplementation = {};
      for (const { name, definition, requestType } of methodsOf(service)) {
        const delta = requestType === 'DeltaDiscoveryRequest';
        if (!delta && requestType !== 'DiscoveryRequest') throw new Error(`${service}/${name}: unexpected request ${requestType}`);
        decoders[name] = delta ? decodeDeltaDiscoveryRequest : decodeDiscoveryRequest;
        if (!definition.requestStream)
          handlers[name] = (call: grpc.ServerUnaryCall<DiscoveryRequest, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
            this.fetch(call.request, peerOf(call), typeUrl!, cb);
        else if (delta)
          handlers[name] = (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => this.serveDelta(call, typeUrl);
        else handlers[name] = (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.serveSotw(call, typeUrl);
      }
      server.addService(serviceDefinition(service, decoders), handlers);
    }
  }

  private serveSotw(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>, onlyType?: string): void {
    this.serve(call, new SotwStream(this, call, onlyType, peerOf(call)), (s, req) => (s as SotwStream).onRequest(req));
  }

  private serveDelta(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>, onlyType?: string): void {
    this.serve(call, new DeltaStream(this, call, onlyType, peerOf(call)), (s, req) => (s as DeltaStream).onRequest(req));
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
        const group = this.streamsByGroup.get(stream.group);
        group?.delete(stream);
        this.fleetIndex.detached(stream);
        this.log.info({ node: stream.node?.id, stream: stream.id, err: err?.message }, 'xds stream closed');
        this.emit('disconnect', stream);
        if (group?.size === 0) {
          this.streamsByGroup.delete(stream.group);
          this.emit('groupIdle', stream.group);
        }
      }
    };
    call.on('data', (req: Req) => {
      if (ended) return;
      try {
        handle(stream, req);
      } catch (err) {
        const e = err instanceof ProtocolError ? err : new ProtocolError(grpc.status.INTERNAL, String(err));
        if (!(err instanceof ProtocolError)) this.log.error({ err, stream: stream.id }, 'xds request failed');
        else if (err.code === grpc.status.PERMISSION_DENIED) this.log.warn({ peer: stream.peer.address, problem: err.message }, 'xds stream refused');
        // grpc-js sends a status for an emitted error (and 'error' ends the stream here); a
        // destroyed call would just hang open.
        stream.endWith(e.code, e.message);
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

  private fetch(req: DiscoveryRequest, peer: XdsPeer, typeUrl: string, cb: grpc.sendUnaryData<Buffer>): void {
    if (!req.node?.id) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'node.id is required' });
    const names = req.resource_names ?? [];
    try {
      checkNode(req.node, this.limits);
      checkRequestNames([names], this.limits);
    } catch (err) {
      if (err instanceof ProtocolError) return cb({ code: err.code, details: err.message });
      throw err;
    }
    const node = nodeFromRequest(req.node);
    const refusal = this.authorize(node, peer);
    if (refusal !== undefined) {
      this.log.warn({ peer: peer.address, problem: refusal }, 'xds fetch refused');
      return cb({ code: grpc.status.PERMISSION_DENIED, details: refusal });
    }
    const group = this.groupOf(node, peer);
    const view = this.cache.view(group, typeUrl, names.length === 0 || names.includes('*') ? WILDCARD : new Set(names));
    if (req.version_info && req.version_info === view.version)
      return cb({ code: grpc.status.UNAVAILABLE, details: 'not modified' });
    cb(null, Buffer.concat([view.body, bytesField(Field.response.nonce, 'fetch')]));
  }

  // StreamHost
  authorize(node: XdsNode, peer: XdsPeer): string | undefined {
    return this.authorizer?.(node, peer);
  }

  attached(stream: XdsStream): void {
    this.attachedStreams.add(stream);
    this.fleetIndex.attached(stream);
    let group = this.streamsByGroup.get(stream.group);
    const first = !group;
    if (!group) this.streamsByGroup.set(stream.group, (group = new Set()));
    group.add(stream);
    this.log.info(
      { node: stream.node?.id, cluster: stream.node?.cluster, userAgent: stream.node?.userAgentName, group: stream.group, flavour: stream.flavour, stream: stream.id, peer: stream.peer.address },
      'xds stream opened',
    );
    if (first) this.emit('groupActive', stream.group);
    this.emit('connect', stream);
  }

  joined(stream: XdsStream, owner: string): void {
    this.fleetIndex.joined(stream, owner);
  }

  acked(stream: XdsStream, typeUrl: string, version: string): void {
    this.emit('ack', stream, typeUrl, version);
    this.fleetIndex.answered(stream);
  }

  nacked(stream: XdsStream, typeUrl: string, nack: Nack): void {
    this.log.warn({ node: stream.node?.id, typeUrl, version: nack.version, message: nack.message }, 'xds NACK');
    this.emit('nack', stream, typeUrl, nack);
    this.fleetIndex.answered(stream);
  }

  /** Where each stream that counts for `owner` stands now (see Fleet). */
  ownerStatus(owner: string): OwnerStatus {
    return this.fleetIndex.status(owner);
  }

  /** Waits until no stream of `owner` is pending (and minNodes nodes acked), or the timeout. */
  awaitOwner(owner: string, opts: AwaitOwnerOptions): Promise<OwnerWaitResult> {
    return this.fleetIndex.awaitOwner(owner, opts);
  }

  /** Whether a live stream of `nodeId` was sent (or holds) `name` of `typeUrl`; with `from`,
   *  only streams whose peer it accepts count. */
  wasSent(nodeId: string, typeUrl: string, name: string, from?: (peer: XdsPeer) => boolean): boolean {
    return this.fleetIndex.wasSent(nodeId, typeUrl, name, from);
  }

  /**
   * Asks `decide` about every attached stream and ends those it gives an ending for, with that
   * status (their clients reconnect and attach again, e.g. under a new access policy). Returns
   * how many were ended.
   */
  endStreams(decide: (stream: { readonly node: XdsNode; readonly peer: XdsPeer; readonly group: string }) => StreamEnding | undefined): number {
    let ended = 0;
    for (const stream of [...this.attachedStreams]) {
      const ending = decide({ node: stream.node!, peer: stream.peer, group: stream.group });
      if (!ending || stream.closed) continue;
      this.log.info({ node: stream.node?.id, stream: stream.id, code: grpc.status[ending.code], reason: ending.message }, 'xds stream ended by the server');
      stream.endWith(ending.code, ending.message);
      ended++;
    }
    return ended;
  }

  /** Sizes of the fleet indexes (for /metrics; they return to zero with the streams). */
  fleetIndexStats(): { ownerEntries: number; nodes: number; waits: number } {
    return this.fleetIndex.stats();
  }

  /** Cache groups with at least one attached stream. */
  activeGroups(): string[] {
    return [...this.streamsByGroup.keys()].sort();
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

  async listen(host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    const server = new grpc.Server(this.grpcServerOptions());
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
