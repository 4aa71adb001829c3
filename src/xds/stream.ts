// What state-of-the-world and delta streams share: the node, per-type bookkeeping that fleet
// status reads, write back-pressure, and make-before-break retention.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ResourceCache } from './cache.js';
import { WILDCARD } from './cache.js';
import type { Resource } from './resource.js';
import type { RawNode, XdsNode } from './node.js';
import { byPushOrder, isWildcardCapable, nodeFromRequest, PUSH_ORDER } from './node.js';

/** A request that ends its stream with a gRPC status. */
export class ProtocolError extends Error {
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message);
  }
}

export interface Nack {
  readonly version: string;
  readonly message: string;
  readonly code: number;
  readonly at: Date;
}

/** Per stream and type URL: subscription, what was sent, what was accepted. */
export class TypeState {
  wildcard = false;
  /** Wildcard established by an empty first request; lasts while requests stay empty. */
  legacyWildcard = false;
  names = new Set<string>();
  /** The cache's memo key for this subscription (`*` or the sorted names), kept by
   *  replaceNames so that a state-of-the-world push sorts nothing. */
  selectionKey = '';
  /** Latest nonce sent for this type. */
  nonce = '';
  sentVersion = '';
  sent: ReadonlyMap<string, Resource> = new Map();
  sentAt?: Date;
  ackedVersion = '';
  acked: ReadonlyMap<string, Resource> = new Map();
  ackedAt?: Date;
  lastNack?: Nack;
  /** True while the last response is neither ACKed nor NACKed. */
  awaiting = false;
  /** True when the last response kept resources the cache no longer has. */
  retaining = false;

  constructor(readonly typeUrl: string) {}

  /** Applies a state-of-the-world `resource_names`; returns whether the subscription changed.
   *  An ACK repeats the names: that case allocates nothing. */
  replaceNames(requested: readonly string[], first: boolean): boolean {
    // The names are `requested` without '*'; they equal the current set when every one is in it
    // and there are as many (a repeated name counts as a change, as it always did).
    let star = false;
    let count = 0;
    let same = true;
    for (const n of requested) {
      if (n === '*') star = true;
      else {
        count++;
        if (same && !this.names.has(n)) same = false;
      }
    }
    if (count !== this.names.size) same = false;
    let wildcard: boolean;
    if (first) {
      this.legacyWildcard = requested.length === 0 && isWildcardCapable(this.typeUrl);
      wildcard = star || this.legacyWildcard;
    } else {
      if (requested.length > 0) this.legacyWildcard = false;
      wildcard = star || this.legacyWildcard;
    }
    const changed = wildcard !== this.wildcard || !same;
    this.wildcard = wildcard;
    if (!same) this.names = new Set(requested.filter((n) => n !== '*'));
    if (changed || first) this.selectionKey = wildcard ? WILDCARD : [...this.names].sort().join('\n');
    return changed;
  }

  selects(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }
}

export interface TypeStatus {
  typeUrl: string;
  subscription: '*' | string[];
  sentVersion: string | null;
  sentAt: string | null;
  ackedVersion: string | null;
  ackedAt: string | null;
  lastNack: { version: string; message: string; at: string } | null;
}

export type Convergence = 'acked' | 'pending' | 'rejected';

/** Callbacks from a stream to the server that owns it. */
export interface StreamHost {
  readonly cache: ResourceCache;
  readonly log: Logger;
  groupOf(node: XdsNode): string;
  attached(stream: XdsStream): void;
  acked(stream: XdsStream, typeUrl: string, version: string): void;
  nacked(stream: XdsStream, typeUrl: string, nack: Nack): void;
}

/** The duplex call as the stream needs it (a grpc-js ServerDuplexStream). */
export interface Call {
  write(chunk: Buffer): boolean;
  once(event: 'drain', fn: () => void): unknown;
}

let nextStreamId = 1;

export abstract class XdsStream {
  readonly id = nextStreamId++;
  readonly connectedAt = new Date();
  node?: XdsNode;
  group = '';
  readonly types = new Map<string, TypeState>();
  protected nonceCounter = 0;
  private blocked = false;
  /** Types to push once the transport drains, and whether that push is forced; created the
   *  first time a write is held back (most streams never need it). */
  private deferred?: Map<string, boolean>;
  closed = false;

  constructor(
    protected readonly host: StreamHost,
    protected readonly call: Call,
    /** Per-type services (LDS, CDS, ...) serve one type only; ADS serves all. */
    readonly onlyType?: string,
  ) {}

  abstract readonly flavour: 'sotw' | 'delta';

  /** Sends what changed for this type, if anything (or always, when forced). */
  protected abstract push(typeUrl: string, force?: boolean): void;

  /** Whether this stream's client holds the current version of the type. */
  abstract convergence(typeUrl: string): Convergence;

  /** Takes the node from the first request and returns the type URL this request is about. */
  protected identify(node: RawNode | null | undefined, requestType: string): string {
    if (!this.node) {
      if (!node?.id) throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, 'the first request must carry node.id');
      this.attach(nodeFromRequest(node));
    }
    const typeUrl = requestType || this.onlyType || '';
    if (!typeUrl) throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, 'type_url is required on ADS');
    if (this.onlyType && typeUrl !== this.onlyType)
      throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, `this service serves ${this.onlyType}, not ${typeUrl}`);
    return typeUrl;
  }

  /** A request answering the latest response of its type is an ACK, or a NACK when it
   *  carries error_detail; one answering an older response counts as neither. */
  protected settle(st: TypeState, nonce: string, error: { code?: number; message?: string } | null | undefined): void {
    if (!nonce || nonce !== st.nonce || !st.awaiting) return;
    st.awaiting = false;
    if (error) {
      const nack = { version: st.sentVersion, message: error.message ?? '', code: error.code ?? 0, at: new Date() };
      st.lastNack = nack;
      this.host.nacked(this, st.typeUrl, nack);
    } else {
      st.acked = st.sent;
      st.ackedVersion = st.sentVersion;
      st.ackedAt = new Date();
      this.host.acked(this, st.typeUrl, st.ackedVersion);
      this.releaseRetained(st.typeUrl);
    }
  }

  protected attach(node: XdsNode): void {
    this.node = node;
    this.group = this.host.groupOf(node);
    this.host.attached(this);
  }

  /** The cache changed: push the affected types in make-before-break order (types outside
   *  PUSH_ORDER last, in the order given). Runs for every stream of the group: allocates nothing. */
  onCacheChange(group: string, typeUrls: ReadonlySet<string>): void {
    if (this.closed || group !== this.group) return;
    for (const t of PUSH_ORDER) if (typeUrls.has(t) && this.types.has(t)) this.push(t);
    for (const t of typeUrls) if (!PUSH_ORDER.includes(t) && this.types.has(t)) this.push(t);
  }

  protected nextNonce(): string {
    return String(++this.nonceCounter);
  }

  /** Writes unless the client is not reading; then remembers the type and sends its latest
   *  state once the transport drains, so a slow node costs nothing to the others. */
  protected writeOrDefer(typeUrl: string, build: () => Buffer | undefined, force = false): void {
    if (!this.mayWrite(typeUrl, force)) return;
    const msg = build();
    if (msg) this.write(msg);
  }

  /** writeOrDefer without the closure, for the hot path: `if (mayWrite(t, force)) { build; write }`.
   *  False when the stream is closed, or when the transport is full — then the type (and whether
   *  its push was forced) is remembered and pushed once the transport drains. */
  protected mayWrite(typeUrl: string, force = false): boolean {
    if (this.closed) return false;
    if (this.blocked) {
      const deferred = (this.deferred ??= new Map());
      deferred.set(typeUrl, force || (deferred.get(typeUrl) ?? false));
      return false;
    }
    return true;
  }

  protected write(msg: Buffer): void {
    if (!this.call.write(msg)) {
      this.blocked = true;
      this.call.once('drain', () => {
        this.blocked = false;
        if (!this.deferred) return;
        const pending = [...this.deferred].sort(([a], [b]) => byPushOrder(a, b));
        this.deferred.clear();
        for (const [t, forced] of pending) this.push(t, forced);
      });
    }
  }

  /** Is `name` of `typeUrl` still pointed at by something this client holds or was sent? */
  /** Whether a resource this client was sent points at resources of `typeUrl`: it has not
   *  asked for them yet, but will (a listener's routes, a route's clusters). */
  protected willSubscribe(typeUrl: string): boolean {
    for (const st of this.types.values()) {
      if (st.typeUrl === typeUrl) continue;
      for (const r of st.sent.values()) if (r.refs[typeUrl]?.length) return true;
    }
    return false;
  }

  protected isReferenced(typeUrl: string, name: string): boolean {
    for (const st of this.types.values()) {
      if (st.typeUrl === typeUrl) continue;
      for (const held of [st.sent, st.acked])
        for (const r of held.values()) if (r.refs[typeUrl]?.includes(name)) return true;
    }
    return false;
  }

  /** After an ACK, types that kept removed resources alive may now drop them. */
  protected releaseRetained(ackedType: string): void {
    let any = false;
    for (const st of this.types.values()) if (st.typeUrl !== ackedType && st.retaining) any = true;
    if (!any) return; // the common case: nothing is retained, nothing to sort
    for (const st of [...this.types.values()].sort((a, b) => byPushOrder(a.typeUrl, b.typeUrl)))
      if (st.typeUrl !== ackedType && st.retaining) this.push(st.typeUrl);
  }

  status(): TypeStatus[] {
    return [...this.types.values()].map((st) => ({
      typeUrl: st.typeUrl,
      subscription: st.wildcard ? '*' : [...st.names].sort(),
      sentVersion: st.sentVersion || null,
      sentAt: st.sentAt?.toISOString() ?? null,
      ackedVersion: st.ackedVersion || null,
      ackedAt: st.ackedAt?.toISOString() ?? null,
      lastNack: st.lastNack
        ? { version: st.lastNack.version, message: st.lastNack.message, at: st.lastNack.at.toISOString() }
        : null,
    }));
  }

  close(): void {
    this.closed = true;
  }
}
