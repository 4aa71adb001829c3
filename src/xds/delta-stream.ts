// Incremental (delta) xDS on one stream: per-resource versions, subscribe/unsubscribe,
// removed_resources, and initial_resource_versions on reconnect. A request costs work in its
// own size (the names it carries), never in everything the stream is subscribed to: only the
// cache changing, a wildcard change or the first request look at the whole type.
import { checkRequestNames } from './limits.js';
import type { RawNode } from './node.js';
import { TypeUrl } from './protos.js';
import type { Resource } from './resource.js';
import { ResourceSet } from './resource-set.js';
import { Field, bytesField } from './wire.js';
import { TypeState, XdsStream } from './stream.js';

export interface DeltaDiscoveryRequest {
  node?: RawNode | null;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: { code?: number; message?: string } | null;
}

/**
 * name → version the client holds, as far as we know, with an order-independent digest kept up
 * to date on every change: the response's system_version_info then costs nothing per name
 * (hashing the sorted map made every response cost the whole subscription).
 */
class KnownVersions {
  private readonly map = new Map<string, string>();
  private a = 0;
  private b = 0;

  get size(): number {
    return this.map.size;
  }
  get(name: string): string | undefined {
    return this.map.get(name);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  keys(): IterableIterator<string> {
    return this.map.keys();
  }
  set(name: string, version: string): void {
    const old = this.map.get(name);
    if (old === version) return;
    if (old !== undefined) this.mix(name, old);
    this.mix(name, version);
    this.map.set(name, version);
  }
  delete(name: string): boolean {
    const old = this.map.get(name);
    if (old === undefined) return false;
    this.mix(name, old);
    return this.map.delete(name);
  }
  /** Equal maps give equal digests, whatever order they were built in. */
  digest(): string {
    return `${(this.a >>> 0).toString(16).padStart(8, '0')}${(this.b >>> 0).toString(16).padStart(8, '0')}.${this.map.size}`;
  }
  /** XOR of two 32-bit FNV-1a hashes of each entry: adding and removing an entry cancel out. */
  private mix(name: string, version: string): void {
    this.a ^= fnv1a(name, version, 0x811c9dc5);
    this.b ^= fnv1a(name, version, 0x050c5d1f);
  }
}

function fnv1a(name: string, version: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0, 0x01000193); // separator: ("ab", "c") and ("a", "bc") differ
  for (let i = 0; i < version.length; i++) h = Math.imul(h ^ version.charCodeAt(i), 0x01000193);
  return h;
}

/** A response not answered yet: its nonce, version and what it changed (null = removed). */
interface Unanswered {
  nonce: string;
  version: string;
  changes: Map<string, Resource | null>;
}

/** Responses awaiting an answer kept apart; older ones merge (a client that never answers
 *  costs at most its subscription). */
const MAX_UNANSWERED = 16;

/** Delta bookkeeping on top of the shared per-type state. */
class DeltaTypeState extends TypeState {
  /** What the client holds, as far as we know: name → version. Updated when we send, so a
   *  NACKed version is not sent again. */
  known = new KnownVersions();
  /** Names just subscribed that the client does not hold: if they do not exist, say so
   *  (in removed_resources) rather than leave the client waiting for its fetch timeout. */
  askedFor = new Set<string>();
  /** Responses sent and not answered yet, oldest first. Each delta response is ACKed or
   *  NACKed on its own, so what a client accepted is tracked per response. */
  unanswered: Unanswered[] = [];
  // Mutated in place (a push changes a few entries): never the shared empty set.
  override sent = new ResourceSet();
  override acked = new ResourceSet();
}

export class DeltaStream extends XdsStream {
  readonly flavour = 'delta' as const;
  declare readonly types: Map<string, DeltaTypeState>;

  onRequest(req: DeltaDiscoveryRequest): void {
    const typeUrl = this.identify(req.node, req.type_url);
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    let st = this.types.get(typeUrl);
    const first = !st;
    const initial = first ? Object.entries(req.initial_resource_versions ?? {}) : [];
    checkRequestNames([subscribe, unsubscribe, initial.map(([n]) => n)], this.host.limits);
    if (!st) {
      st = new DeltaTypeState(typeUrl);
      this.types.set(typeUrl, st);
      st.legacyWildcard = subscribe.length === 0;
      st.wildcard = st.legacyWildcard;
      for (const [name, version] of initial) st.known.set(name, version);
      if (st.wildcard) this.joinSelected(typeUrl, true, []);
    }
    st.requests++;
    // Subscription changes count whatever the nonce says.
    let whole = first; // whether the whole type must be looked at
    const touched: string[] = [];
    for (const name of subscribe) {
      if (name === '*') {
        if (!st.wildcard) whole = true;
        st.wildcard = true;
        this.joinSelected(typeUrl, true, []);
        continue;
      }
      const added = !st.names.has(name);
      st.names.add(name);
      const asked = !st.known.has(name);
      if (asked) st.askedFor.add(name);
      if (added || asked) touched.push(name);
    }
    if (subscribe.length > 0) {
      this.checkSubscribed();
      this.joinSelected(typeUrl, false, subscribe);
    }
    for (const name of unsubscribe) {
      if (name === '*') {
        st.wildcard = false;
        st.legacyWildcard = false;
        // The client drops what only the wildcard gave it; a later subscription resends it.
        for (const held of [...st.known.keys()]) if (!st.names.has(held)) this.forget(st, held);
      } else {
        st.names.delete(name);
        st.askedFor.delete(name);
        if (!st.wildcard) this.forget(st, name); // the client drops it without being told
      }
    }

    this.answer(st, req.response_nonce, req.error_detail);
    if (whole) this.push(typeUrl, first);
    else if (touched.length > 0) this.pushNames(st, touched);
  }

  /** Each delta response carries only what changed: is `name` in one not answered yet? */
  protected override offering(st: TypeState, name: string): boolean {
    for (const u of (st as DeltaTypeState).unanswered) if (u.changes.has(name)) return true;
    return false;
  }

  /** The client no longer holds `name`. */
  private forget(st: DeltaTypeState, name: string): void {
    st.known.delete(name);
    st.sent.delete(name);
    st.acked.delete(name);
  }

  /**
   * An answer to one of our responses. Responses before it that were never answered are taken
   * as accepted (a client answers in order); an ACK applies the response's changes to what the
   * client holds, a NACK keeps them out and is remembered with what it rejected.
   */
  private answer(st: DeltaTypeState, nonce: string, error: { code?: number; message?: string } | null | undefined): void {
    if (!nonce) return;
    const i = st.unanswered.findIndex((u) => u.nonce === nonce);
    if (i < 0) return; // unknown, or answered already
    const answered = st.unanswered.splice(0, i + 1);
    const response = answered.pop()!;
    for (const u of answered) this.accept(st, u);
    st.awaiting = st.unanswered.length > 0;
    if (error) {
      const resources = new ResourceSet();
      for (const [name, r] of response.changes) if (r) resources.set(name, r);
      const nack = { version: response.version, message: error.message ?? '', code: error.code ?? 0, at: new Date(), resources };
      st.lastNack = nack;
      this.host.nacked(this, st.typeUrl, nack);
    } else {
      this.accept(st, response);
      st.ackedVersion = response.version;
      st.ackedAt = Date.now();
      this.host.acked(this, st.typeUrl, response.version);
      this.releaseRetained(st.typeUrl);
    }
  }

  private accept(st: DeltaTypeState, u: Unanswered): void {
    for (const [name, r] of u.changes) {
      if (r) st.acked.set(name, r);
      else st.acked.delete(name);
    }
  }

  /** The whole type: on the first request, a wildcard change, a cache change, a drained
   *  transport. Work in the subscription (and what the client holds). */
  protected push(typeUrl: string, force = false): void {
    const st = this.types.get(typeUrl);
    if (!st || !this.mayWrite(typeUrl, force)) return;
    const all = this.host.cache.resources(this.group, typeUrl);
    const changed: Resource[] = [];
    const holding = new Set<string>();
    const consider = (r: Resource) => {
      holding.add(r.name);
      if (st.known.get(r.name) !== r.version) changed.push(r);
    };
    if (st.wildcard) for (const r of all.values()) consider(r);
    else
      for (const name of st.names) {
        const r = all.get(name);
        if (r) consider(r);
      }
    const removed = new Set<string>();
    st.retaining = false;
    for (const name of st.known.keys()) {
      if (holding.has(name) || !st.selects(name)) continue;
      if (st.sent.has(name) && this.isReferenced(typeUrl, name)) {
        holding.add(name); // make before break: drop it once nothing refers to it
        st.retaining = true;
      } else removed.add(name);
    }
    for (const name of st.askedFor) if (!holding.has(name)) removed.add(name);
    st.askedFor.clear();
    if (!force && changed.length === 0 && removed.size === 0) return;
    this.send(st, changed, removed);
  }

  /** Only the names a request just subscribed to: work in the request. */
  private pushNames(st: DeltaTypeState, names: readonly string[]): void {
    if (!this.mayWrite(st.typeUrl)) return; // deferred: the whole type is pushed on drain
    const all = this.host.cache.resources(this.group, st.typeUrl);
    const changed: Resource[] = [];
    const removed = new Set<string>();
    for (const name of names) {
      const asked = st.askedFor.delete(name);
      if (!st.selects(name)) continue; // subscribed and unsubscribed in one request
      const r = all.get(name);
      if (r) {
        if (st.known.get(name) !== r.version) changed.push(r);
      } else if (asked && !st.sent.has(name)) removed.add(name);
    }
    if (changed.length === 0 && removed.size === 0) return;
    this.send(st, changed, removed);
  }

  private send(st: DeltaTypeState, changed: readonly Resource[], removed: ReadonlySet<string>): void {
    const typeUrl = st.typeUrl;
    const changes = new Map<string, Resource | null>();
    for (const r of changed) {
      st.known.set(r.name, r.version);
      st.sent.set(r.name, r);
      changes.set(r.name, r);
    }
    for (const name of removed) {
      st.known.delete(name);
      // A name the client was never sent (asked for, does not exist) changes nothing it holds.
      if (st.sent.delete(name)) changes.set(name, null);
    }
    const nonce = this.nextNonce();
    st.sentVersion = st.known.digest();
    st.sentAt = Date.now();
    st.nonce = nonce;
    st.awaiting = true;
    this.remember(st, { nonce, version: st.sentVersion, changes });
    const parts: Buffer[] = [bytesField(Field.deltaResponse.systemVersionInfo, st.sentVersion)];
    for (const r of changed) parts.push(r.deltaField);
    parts.push(bytesField(Field.deltaResponse.typeUrl, typeUrl));
    for (const n of removed) parts.push(bytesField(Field.deltaResponse.removedResources, n));
    parts.push(bytesField(Field.deltaResponse.nonce, nonce), this.host.cache.deltaControlPlaneField);
    this.write(Buffer.concat(parts));
    if (this.types.size < 4) this.joinReferenced(st);
    if (typeUrl === TypeUrl.Cluster && changed.length > 0) this.resendEndpointsOf(changed);
  }

  private remember(st: DeltaTypeState, u: Unanswered): void {
    if (st.unanswered.length >= MAX_UNANSWERED) {
      const [a, b] = st.unanswered.splice(0, 2) as [Unanswered, Unanswered];
      for (const [name, r] of b.changes) a.changes.set(name, r);
      st.unanswered.unshift({ nonce: b.nonce, version: b.version, changes: a.changes });
    }
    st.unanswered.push(u);
  }

  /** A (re)sent cluster warms only after its endpoints arrive: send them again after it. */
  private resendEndpointsOf(clusters: readonly Resource[]): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds) return;
    let again = false;
    for (const c of clusters)
      for (const n of c.refs[TypeUrl.ClusterLoadAssignment] ?? [])
        if (eds.selects(n) && eds.known.delete(n)) again = true;
    if (again) this.push(TypeUrl.ClusterLoadAssignment);
  }
}
