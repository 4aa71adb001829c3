// What state-of-the-world and delta streams share: the node, per-type bookkeeping that fleet
// status reads, the owners a stream counts for, write back-pressure, and make-before-break
// retention.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ResourceCache } from './cache.js';
import { WILDCARD } from './cache.js';
import { ProtocolError } from './errors.js';
import type { XdsLimits } from './limits.js';
import { checkNode, checkSubscribed, checkTypeUrl } from './limits.js';
import type { Resource } from './resource.js';
import { EMPTY_SET } from './resource-set.js';
import type { ResourceSet } from './resource-set.js';
import type { RawNode, XdsNode } from './node.js';
import { byPushOrder, isWildcardCapable, nodeFromRequest, PUSH_ORDER } from './node.js';
import type { XdsPeer } from './peer.js';
import { NO_PEER } from './peer.js';

export { ProtocolError };

export interface Nack {
  readonly version: string;
  readonly message: string;
  readonly code: number;
  readonly at: Date;
  /** What the rejected response carried: a NACK counts against an owner only if this carries
   *  the owner's current fragment. */
  readonly resources: ResourceSet;
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
  /** What the client was told to hold, as of the latest response. */
  sent: ResourceSet = EMPTY_SET;
  /** Epoch ms (a number, not a Date: set on every push to every stream). */
  sentAt?: number;
  ackedVersion = '';
  /** What the client accepted. */
  acked: ResourceSet = EMPTY_SET;
  ackedAt?: number;
  lastNack?: Nack;
  /** True while the last response is neither ACKed nor NACKed. */
  awaiting = false;
  /** True when the last response kept resources the cache no longer has. */
  retaining = false;
  /** Requests received for this type (ACKs, NACKs and subscription changes): a client that
   *  re-subscribes shows here. */
  requests = 0;

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
  /** Requests received for the type on this stream. */
  requests: number;
}

export type Convergence = 'acked' | 'pending' | 'rejected';

/** One change of a cache group, as every stream of the group sees it. */
export interface CacheChange {
  group: string;
  /** The changed types in make-before-break order (types outside PUSH_ORDER last). */
  types: readonly string[];
  /** Owners a resource name newly carries: a stream may now count for them. */
  attached: readonly string[];
}

export function cacheChange(group: string, typeUrls: ReadonlySet<string>, attached: ReadonlySet<string>): CacheChange {
  return { group, types: [...typeUrls].sort(byPushOrder), attached: [...attached] };
}

/** Where one stream stands for one owner; `none` when it holds, selects and is about to ask
 *  for nothing that carries the owner (it does not count for it). */
export interface OwnerStanding {
  state: Convergence | 'none';
  message?: string;
}

/** Callbacks from a stream to the server that owns it. */
export interface StreamHost {
  readonly cache: ResourceCache;
  readonly log: Logger;
  readonly limits: Readonly<XdsLimits>;
  groupOf(node: XdsNode, peer: XdsPeer): string;
  /** Why `node` may not attach from `peer` (the stream ends with PERMISSION_DENIED), or undefined. */
  authorize(node: XdsNode, peer: XdsPeer): string | undefined;
  attached(stream: XdsStream): void;
  /** The stream now may count for `owner` (see XdsStream.owners). */
  joined(stream: XdsStream, owner: string): void;
  acked(stream: XdsStream, typeUrl: string, version: string): void;
  nacked(stream: XdsStream, typeUrl: string, nack: Nack): void;
}

/** The duplex call as the stream needs it (a grpc-js ServerDuplexStream). */
export interface Call {
  write(chunk: Buffer): boolean;
  once(event: 'drain', fn: () => void): unknown;
  /** grpc-js ends the call with this status when an error is emitted on it (benchmarks' fake
   *  calls have none). */
  emit?(event: 'error', status: { code: number; details: string }): boolean;
}

/** Two versions carry the same part of an owner: same bytes, or the same fragment. */
function sameFragment(a: Resource, b: Resource, owner: string): boolean {
  if (a === b || a.version === b.version) return true;
  const f = a.owners[owner];
  return f !== undefined && f === b.owners[owner];
}

const NO_OWNERS: ReadonlySet<string> = new Set();

let nextStreamId = 1;

export abstract class XdsStream {
  readonly id = nextStreamId++;
  readonly connectedAt = new Date();
  node?: XdsNode;
  group = '';
  readonly types = new Map<string, TypeState>();
  /** See `owners`; created on the first join (most streams of a fleet without owners never do). */
  private ownerSet?: Set<string>;
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
    /** Who opened the stream (address, verified client certificate). */
    readonly peer: XdsPeer = NO_PEER,
  ) {}

  abstract readonly flavour: 'sotw' | 'delta';

  /** Sends what changed for this type, if anything (or always, when forced). */
  protected abstract push(typeUrl: string, force?: boolean): void;

  /** Takes the node from the first request and returns the type URL this request is about.
   *  Refuses what the limits or the host's authorization do not allow before anything is kept
   *  for it. */
  protected identify(node: RawNode | null | undefined, requestType: string): string {
    if (!this.node) {
      if (!node?.id) throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, 'the first request must carry node.id');
      checkNode(node, this.host.limits);
      const claimed = nodeFromRequest(node);
      const refusal = this.host.authorize(claimed, this.peer);
      if (refusal !== undefined) throw new ProtocolError(GrpcStatus.PERMISSION_DENIED, refusal);
      this.attach(claimed);
    }
    const typeUrl = requestType || this.onlyType || '';
    if (!typeUrl) throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, 'type_url is required on ADS');
    if (this.onlyType && typeUrl !== this.onlyType)
      throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, `this service serves ${this.onlyType}, not ${typeUrl}`);
    checkTypeUrl(typeUrl);
    return typeUrl;
  }

  /** Refuses a subscription past the per-stream bound (over every type). */
  protected checkSubscribed(): void {
    let total = 0;
    for (const st of this.types.values()) total += st.names.size;
    checkSubscribed(total, this.host.limits);
  }

  /** A request answering the latest response of its type is an ACK, or a NACK when it
   *  carries error_detail; one answering an older response counts as neither. */
  protected settle(st: TypeState, nonce: string, error: { code?: number; message?: string } | null | undefined): void {
    if (!nonce || nonce !== st.nonce || !st.awaiting) return;
    st.awaiting = false;
    if (error) {
      const nack = { version: st.sentVersion, message: error.message ?? '', code: error.code ?? 0, at: new Date(), resources: st.sent };
      st.lastNack = nack;
      this.host.nacked(this, st.typeUrl, nack);
    } else {
      st.acked = st.sent;
      st.ackedVersion = st.sentVersion;
      st.ackedAt = Date.now();
      this.host.acked(this, st.typeUrl, st.ackedVersion);
      this.releaseRetained(st.typeUrl);
    }
  }

  protected attach(node: XdsNode): void {
    this.node = node;
    this.group = this.host.groupOf(node, this.peer);
    this.host.attached(this);
  }

  /** The cache changed: push the affected types in make-before-break order, and join owners
   *  that now concern this stream (only owners a resource name newly carries can: a changed
   *  fragment concerns the streams that counted for its owner already). Runs for every stream
   *  of the group, 10,000 in a row after a rollback: indexed loops over arrays made once per
   *  change, no iterator, no allocation. */
  onCacheChange(change: CacheChange): void {
    if (this.closed || change.group !== this.group) return;
    const { types, attached } = change;
    for (let i = 0; i < types.length; i++) if (this.types.has(types[i]!)) this.push(types[i]!);
    for (let i = 0; i < attached.length; i++) if (!this.owners.has(attached[i]!)) this.joinIfConcerned(attached[i]!, types);
  }

  /** Joins `owner` if this stream selects, or is about to ask for, one of its resources. */
  private joinIfConcerned(owner: string, typeUrls: readonly string[]): void {
    for (const t of typeUrls) {
      const carrying = this.host.cache.ownedBy(this.group, t, owner);
      if (!carrying) continue;
      const st = this.types.get(t);
      if (st?.wildcard) return this.join(owner);
      for (const name of carrying.keys()) if (st?.names.has(name) || this.refersTo(t, name)) return this.join(owner);
    }
  }

  /**
   * Owners this stream may count for: every owner of a resource it selected, was sent, or is
   * about to ask for. A superset (an owner stays until fleet status finds the stream no longer
   * concerned, see ownerStanding), so joining is cheap and never missed.
   */
  get owners(): ReadonlySet<string> {
    return this.ownerSet ?? NO_OWNERS;
  }

  protected join(owner: string): void {
    if (this.ownerSet?.has(owner)) return;
    (this.ownerSet ??= new Set()).add(owner);
    this.host.joined(this, owner);
  }

  /** Fleet status found the stream no longer concerned by `owner` (it joins again if it becomes so). */
  leave(owner: string): void {
    this.ownerSet?.delete(owner);
  }

  /** Joins the owners of what a (new) subscription selects: all owners of the type for a
   *  wildcard, the owners of each named resource otherwise. */
  protected joinSelected(typeUrl: string, wildcard: boolean, names: Iterable<string>): void {
    if (wildcard) {
      for (const o of this.host.cache.owners(this.group, typeUrl)) this.join(o);
      return;
    }
    const all = this.host.cache.resources(this.group, typeUrl);
    for (const name of names) {
      const r = all.get(name);
      if (r) for (const o in r.owners) this.join(o);
    }
  }

  /** After a push of `st`: joins the owners of resources it points at in types this stream has
   *  not asked for yet (a listener's routes before the first RDS request). */
  protected joinReferenced(st: TypeState): void {
    if (this.onlyType) return; // a per-type stream never asks for other types
    for (const t of PUSH_ORDER) {
      if (t === st.typeUrl || this.types.has(t)) continue;
      const names = st.sent.referenced(t);
      if (!names) continue;
      const all = this.host.cache.resources(this.group, t);
      for (const name of names) {
        const r = all.get(name);
        if (r) for (const o in r.owners) this.join(o);
      }
    }
  }

  /**
   * Where this stream stands for `owner`: acked when, for every resource carrying the owner
   * that it selects or is about to ask for, the version it ACKed carries the owner's current
   * fragment (and it holds no stale part of the owner); rejected when not, and its last NACK of
   * such a resource was of the owner's current fragment; pending otherwise. Work is in the
   * number of resources carrying the owner, never in everything the stream holds.
   */
  ownerStanding(owner: string): OwnerStanding {
    const cache = this.host.cache;
    let concerned = false;
    let pending = false;
    let rejectedBy: Nack | undefined;
    for (const typeUrl of PUSH_ORDER) {
      const current = cache.ownedBy(this.group, typeUrl, owner);
      const st = this.types.get(typeUrl);
      if (current)
        for (const [name, r] of current) {
          if (st?.selects(name)) {
            concerned = true;
            const held = st.acked.get(name);
            if (held && sameFragment(held, r, owner)) continue;
            pending = true;
            // Rejected: the NACKed response offered this fragment and no newer offer is in flight.
            const offered = st.lastNack?.resources.get(name);
            if (offered && sameFragment(offered, r, owner) && !this.offering(st, name)) rejectedBy ??= st.lastNack;
          } else if (this.refersTo(typeUrl, name)) {
            concerned = true; // it holds something pointing there and will ask for it
            pending = true;
          }
        }
      if (!st) continue;
      // A part of the owner the client holds or was sent that the cache no longer gives it.
      for (const set of [st.acked, st.sent]) {
        const carrying = set.ownedBy(owner);
        if (!carrying) continue;
        concerned = true;
        if (pending) continue;
        const all = cache.resources(this.group, typeUrl);
        for (const [name, held] of carrying) {
          if (current?.has(name) && st.selects(name)) continue; // judged above
          // Same bytes, only the ownership moved: nothing for the client to do.
          if (st.selects(name) && all.get(name)?.version === held.version) continue;
          pending = true;
          break;
        }
      }
    }
    if (!concerned) return { state: 'none' };
    if (!pending) return { state: 'acked' };
    if (rejectedBy) return { state: 'rejected', message: rejectedBy.message };
    return { state: 'pending' };
  }

  /** Whether a response carrying `name` awaits the client's answer. State of the world: the
   *  latest response carries everything selected, so it is whether that one is unanswered. */
  protected offering(st: TypeState, name: string): boolean {
    return st.awaiting && st.sent.has(name);
  }

  /** Whether a resource this stream was sent (of another type) points at `name` of `typeUrl`,
   *  which it will then ask for on this stream (a per-type stream asks on another one). */
  protected refersTo(typeUrl: string, name: string): boolean {
    if (this.onlyType) return false;
    for (const st of this.types.values()) if (st.typeUrl !== typeUrl && st.sent.refersTo(typeUrl, name)) return true;
    return false;
  }

  /** Whether `name` of `typeUrl` is still pointed at by something this client holds or was sent. */
  protected isReferenced(typeUrl: string, name: string): boolean {
    for (const st of this.types.values()) {
      if (st.typeUrl === typeUrl) continue;
      if (st.sent.refersTo(typeUrl, name) || st.acked.refersTo(typeUrl, name)) return true;
    }
    return false;
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
      sentAt: st.sentAt === undefined ? null : new Date(st.sentAt).toISOString(),
      ackedVersion: st.ackedVersion || null,
      ackedAt: st.ackedAt === undefined ? null : new Date(st.ackedAt).toISOString(),
      lastNack: st.lastNack
        ? { version: st.lastNack.version, message: st.lastNack.message, at: st.lastNack.at.toISOString() }
        : null,
      requests: st.requests,
    }));
  }

  /** Ends the call with a gRPC status; the server's error handler then closes the stream. */
  endWith(code: number, message: string): void {
    if (!this.closed) this.call.emit?.('error', { code, details: message });
  }

  /** Ends the stream's life on the server; subclasses free what they hold in shared structures. */
  close(): void {
    this.closed = true;
  }
}
