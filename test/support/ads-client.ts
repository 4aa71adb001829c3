// A small raw xDS test client over real gRPC: state-of-the-world and delta streams on ADS or a
// per-type service. Requests are plain objects encoded with the project's protobufjs registry;
// responses are decoded, resources unpacked from their `Any`. It does exactly what it is told
// (no automatic ACKs), so tests can play any client behaviour, good or bad.
import * as grpc from '@grpc/grpc-js';
import { messageType, unpackAny } from '../../src/xds/protos.js';

const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_PATH = `/${ADS_SERVICE}/StreamAggregatedResources`;
export const DELTA_ADS_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;

/** Path of a per-type method, e.g. `perTypePath('cluster', 'Clusters', 'Stream')`. */
export function perTypePath(pkg: 'listener' | 'route' | 'cluster' | 'endpoint', stem: string, kind: 'Stream' | 'Delta' | 'Fetch'): string {
  const service = { listener: 'Listener', route: 'Route', cluster: 'Cluster', endpoint: 'Endpoint' }[pkg];
  return `/envoy.service.${pkg}.v3.${service}DiscoveryService/${kind}${stem}`;
}

export interface NodeInfo {
  id?: string;
  cluster?: string;
  user_agent_name?: string;
  user_agent_version?: string;
  client_features?: string[];
  locality?: { region?: string; zone?: string; sub_zone?: string };
  /** A google.protobuf.Struct as protobufjs encodes it; build it with `struct()`. */
  metadata?: object;
}

/** Plain JSON as a google.protobuf.Struct for NodeInfo.metadata (protobufjs' built-in Struct
 *  takes camelCase fields: stringValue, structValue, ...). */
export function struct(json: Record<string, unknown>): object {
  const value = (v: unknown): object => {
    if (v === null) return { nullValue: 0 };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: struct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, value(v)])) };
}

export interface ErrorDetail {
  code?: number;
  message?: string;
}

export interface SotwRequest {
  type_url?: string;
  resource_names?: string[];
  version_info?: string;
  response_nonce?: string;
  error_detail?: ErrorDetail;
  /** Default: the client's node on its first request only. Set `null` to omit it. */
  node?: NodeInfo | null;
}

export interface DeltaRequest {
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: ErrorDetail;
  node?: NodeInfo | null;
}

export interface DecodedResource {
  name: string;
  /** Per-resource version (delta only; '' for state of the world). */
  version: string;
  type_url: string;
  /** The unpacked message as a plain object (snake_case fields, enums as strings). */
  value: Record<string, unknown>;
}

export interface SotwResponse {
  version_info: string;
  nonce: string;
  type_url: string;
  resources: DecodedResource[];
  /** Names of `resources`, in the order sent. */
  names: string[];
  control_plane: string;
}

export interface DeltaResponse {
  system_version_info: string;
  nonce: string;
  type_url: string;
  resources: DecodedResource[];
  names: string[];
  removed_resources: string[];
  control_plane: string;
}

interface AnyObject {
  type_url: string;
  value: Uint8Array;
}

const decodeOptions = { longs: String, enums: String, defaults: true, arrays: true } as const;

function decodeAny(any: AnyObject, version = ''): DecodedResource {
  const value = unpackAny(any);
  const name = String(value.name ?? value.cluster_name ?? '');
  return { name, version, type_url: any.type_url, value };
}

function encoder(typeName: string): (req: object) => Buffer {
  const t = messageType(typeName);
  return (req) => Buffer.from(t.encode(t.fromObject(req)).finish());
}

const encodeSotw = encoder('envoy.service.discovery.v3.DiscoveryRequest');
const encodeDelta = encoder('envoy.service.discovery.v3.DeltaDiscoveryRequest');

export function decodeSotw(buf: Buffer): SotwResponse {
  const t = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const o = t.toObject(t.decode(buf), decodeOptions) as {
    version_info: string;
    nonce: string;
    type_url: string;
    resources: AnyObject[];
    control_plane?: { identifier?: string } | null;
  };
  const resources = o.resources.map((a) => decodeAny(a));
  return {
    version_info: o.version_info,
    nonce: o.nonce,
    type_url: o.type_url,
    resources,
    names: resources.map((r) => r.name),
    control_plane: o.control_plane?.identifier ?? '',
  };
}

export function decodeDelta(buf: Buffer): DeltaResponse {
  const t = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const o = t.toObject(t.decode(buf), decodeOptions) as {
    system_version_info: string;
    nonce: string;
    type_url: string;
    resources: { name: string; version: string; resource?: AnyObject | null }[];
    removed_resources: string[];
    control_plane?: { identifier?: string } | null;
  };
  const resources = o.resources.map((r) => {
    const d = r.resource ? decodeAny(r.resource, r.version) : { name: r.name, version: r.version, type_url: '', value: {} };
    return { ...d, name: r.name };
  });
  return {
    system_version_info: o.system_version_info,
    nonce: o.nonce,
    type_url: o.type_url,
    resources,
    names: resources.map((r) => r.name),
    removed_resources: o.removed_resources,
    control_plane: o.control_plane?.identifier ?? '',
  };
}

export interface OpenOptions {
  /** Node sent on the first request (default `{ id: 'node-1', cluster: 'test' }`); `null` = none. */
  node?: NodeInfo | null;
  /** Method path; default ADS (or delta ADS). */
  path?: string;
  /** Open the stream on this channel (several streams on one HTTP/2 connection) instead of a
   *  connection of its own; the channel is not closed with the stream. */
  channel?: grpc.Client;
  /** Credentials for a connection of its own (default plaintext), e.g. `grpc.credentials.createSsl(ca, key, cert)`. */
  credentials?: grpc.ChannelCredentials;
}

/** A channel (one HTTP/2 connection) to share between streams: `open(port, { channel })`. */
export function channel(port: number, credentials = grpc.credentials.createInsecure()): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, credentials, { 'grpc.use_local_subchannel_pool': 1 });
}

interface Waiter<Resp> {
  match: (r: Resp) => boolean;
  resolve: (r: Resp) => void;
  reject: (e: Error) => void;
}

/** Queue of received responses with awaitable `next`, shared by both flavours. */
abstract class TestStream<Req extends { node?: NodeInfo | null }, Resp extends { type_url: string; nonce: string }> {
  protected readonly client: grpc.Client;
  private readonly ownsClient: boolean;
  protected readonly call: grpc.ClientDuplexStream<object, Resp>;
  private readonly queue: Resp[] = [];
  private readonly waiters = new Set<Waiter<Resp>>();
  private ended?: grpc.StatusObject;
  private firstSent = false;
  private cancelled = false;
  /** Every response received, in order (also those already taken by `next`). */
  readonly received: Resp[] = [];
  /** Resolves with the final status of the call (OK, CANCELLED, INVALID_ARGUMENT, ...). */
  readonly status: Promise<grpc.StatusObject>;
  readonly node: NodeInfo | null;

  protected constructor(port: number, path: string, serialize: (req: object) => Buffer, deserialize: (b: Buffer) => Resp, opts: OpenOptions) {
    this.node = opts.node === undefined ? { id: 'node-1', cluster: 'test' } : opts.node;
    // A connection of its own, like a separate process would have (unless a channel is shared).
    this.ownsClient = !opts.channel;
    this.client = opts.channel ?? channel(port, opts.credentials);
    this.call = this.client.makeBidiStreamRequest(path, serialize, deserialize);
    this.call.on('data', (r: Resp) => this.onData(r));
    this.call.on('error', () => {}); // the status below says it all
    this.status = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => {
        this.ended = s;
        for (const w of this.waiters) w.reject(new Error(`stream ended: ${grpc.status[s.code]} ${s.details}`));
        this.waiters.clear();
        resolve(s);
      });
    });
  }

  private onData(r: Resp): void {
    this.received.push(r);
    for (const w of this.waiters) {
      if (w.match(r)) {
        this.waiters.delete(w);
        w.resolve(r);
        return;
      }
    }
    this.queue.push(r);
  }

  protected write(req: Req): void {
    const { node, ...rest } = req;
    const withNode = node !== undefined ? node : this.firstSent ? null : this.node;
    this.firstSent = true;
    this.call.write(withNode ? { ...rest, node: withNode } : rest);
  }

  /** The next response (of `typeUrl`, if given; others stay queued). Rejects on timeout. */
  next(timeoutMs = 5000, typeUrl?: string): Promise<Resp> {
    const match = (r: Resp) => typeUrl === undefined || r.type_url === typeUrl;
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    if (this.ended) return Promise.reject(new Error(`stream ended: ${grpc.status[this.ended.code]} ${this.ended.details}`));
    return new Promise<Resp>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`no response${typeUrl ? ` of ${typeUrl}` : ''} within ${timeoutMs} ms`));
      }, timeoutMs);
      const w: Waiter<Resp> = {
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(w);
    });
  }

  /** Resolves if no response (of `typeUrl`, if given) arrives within `ms`; rejects otherwise. */
  async expectNothing(ms = 200, typeUrl?: string): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const unexpected = this.queue.filter((r) => typeUrl === undefined || r.type_url === typeUrl);
    if (unexpected.length > 0)
      throw new Error(`unexpected response(s): ${unexpected.map((r) => `${r.type_url} nonce=${r.nonce}`).join(', ')}`);
  }

  /** The final status of the call; rejects if the server has not ended it within `timeoutMs`. */
  statusWithin(timeoutMs = 5000): Promise<grpc.StatusObject> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the call was not ended within ${timeoutMs} ms`)), timeoutMs);
      void this.status.then((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  /** Stops reading responses (they pile up in the transport: back-pressure on the server). */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  /** Takes every queued response. */
  drain(): Resp[] {
    return this.queue.splice(0, this.queue.length);
  }

  /** Half-closes and waits for the server to end the call, then closes the channel. */
  async close(): Promise<grpc.StatusObject> {
    if (this.cancelled) return this.status;
    if (!this.ended) this.call.end();
    const timeout = new Promise<undefined>((r) => {
      const timer = setTimeout(r, 1000);
      void this.status.then(() => clearTimeout(timer));
    });
    const s = await Promise.race([this.status, timeout]);
    if (!s) this.call.cancel();
    if (this.ownsClient) this.client.close();
    return s ?? this.status;
  }

  /** Abrupt disconnect: cancels the call (RST_STREAM) and drops the channel. */
  cancel(): void {
    this.cancelled = true;
    this.call.cancel();
    if (this.ownsClient) this.client.close();
  }
}

/** State-of-the-world stream. Remembers the names it last asked for and the last version it
 *  accepted per type, so `ack`/`nack` look like what Envoy and gRPC clients send. */
export class SotwClient extends TestStream<SotwRequest, SotwResponse> {
  private readonly names = new Map<string, string[]>();
  private readonly accepted = new Map<string, string>();

  private constructor(port: number, opts: OpenOptions) {
    super(port, opts.path ?? ADS_PATH, encodeSotw, decodeSotw, opts);
  }

  static open(port: number, opts: OpenOptions = {}): SotwClient {
    return new SotwClient(port, opts);
  }

  send(req: SotwRequest): void {
    if (req.type_url !== undefined) this.names.set(req.type_url, req.resource_names ?? []);
    this.write(req);
  }

  /** A first (or changed) subscription: names `[]` = legacy wildcard. */
  subscribe(typeUrl: string, names: string[] = [], versionInfo = ''): void {
    this.send({ type_url: typeUrl, resource_names: names, version_info: versionInfo, response_nonce: '' });
  }

  /** ACK: echoes version and nonce, with the names last asked for (or `names`). */
  ack(resp: SotwResponse, names?: string[]): void {
    this.accepted.set(resp.type_url, resp.version_info);
    this.send({
      type_url: resp.type_url,
      version_info: resp.version_info,
      response_nonce: resp.nonce,
      resource_names: names ?? this.names.get(resp.type_url) ?? [],
    });
  }

  /** NACK: the last accepted version, the rejected nonce and an error_detail. */
  nack(resp: SotwResponse, message: string, names?: string[]): void {
    this.send({
      type_url: resp.type_url,
      version_info: this.accepted.get(resp.type_url) ?? '',
      response_nonce: resp.nonce,
      resource_names: names ?? this.names.get(resp.type_url) ?? [],
      error_detail: { code: grpc.status.INVALID_ARGUMENT, message },
    });
  }
}

/** Incremental (delta) stream. */
export class DeltaClient extends TestStream<DeltaRequest, DeltaResponse> {
  private constructor(port: number, opts: OpenOptions) {
    super(port, opts.path ?? DELTA_ADS_PATH, encodeDelta, decodeDelta, opts);
  }

  static open(port: number, opts: OpenOptions = {}): DeltaClient {
    return new DeltaClient(port, opts);
  }

  send(req: DeltaRequest): void {
    this.write(req);
  }

  subscribe(typeUrl: string, names: string[] = [], initialVersions: Record<string, string> = {}): void {
    this.send({ type_url: typeUrl, resource_names_subscribe: names, initial_resource_versions: initialVersions });
  }

  unsubscribe(typeUrl: string, names: string[]): void {
    this.send({ type_url: typeUrl, resource_names_unsubscribe: names });
  }

  ack(resp: DeltaResponse): void {
    this.send({ type_url: resp.type_url, response_nonce: resp.nonce });
  }

  nack(resp: DeltaResponse, message: string): void {
    this.send({
      type_url: resp.type_url,
      response_nonce: resp.nonce,
      error_detail: { code: grpc.status.INVALID_ARGUMENT, message },
    });
  }
}

/** One unary Fetch call on a per-type service. */
export function fetch(port: number, path: string, req: SotwRequest, credentials = grpc.credentials.createInsecure()): Promise<SotwResponse> {
  const client = new grpc.Client(`127.0.0.1:${port}`, credentials);
  return new Promise<SotwResponse>((resolve, reject) => {
    client.makeUnaryRequest(path, encodeSotw, decodeSotw, req, (err, resp) => {
      client.close();
      if (err) reject(err);
      else resolve(resp!);
    });
  });
}
