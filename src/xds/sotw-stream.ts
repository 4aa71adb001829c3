// State-of-the-world xDS on one stream (ADS or a per-type service).
import type { SharedResponse, View } from './cache.js';
import { WILDCARD } from './cache.js';
import { checkRequestNames } from './limits.js';
import type { RawNode } from './node.js';
import { TypeUrl } from './protos.js';
import type { Resource } from './resource.js';
import { Field, appendStringField } from './wire.js';
import { TypeState, XdsStream } from './stream.js';

export interface DiscoveryRequest {
  version_info: string;
  node?: RawNode | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code?: number; message?: string } | null;
}

/** Per-type state plus the memoized selection this stream holds in the cache. */
class SotwTypeState extends TypeState {
  /** The selection key retained in the cache for this stream ('' before the first request). */
  retainedKey = '';
  /** The highest nonce sequence number sent for this type. */
  lastSeq = 0;
}

/** Nonces come from one increasing sequence for every SotW stream of the process, so a response
 *  can be shared: 10,000 streams sent the same view after a change write the same bytes (one
 *  allocation, not one per stream), and a stream still never sees a nonce twice for a type. */
let nonceSeq = 0;

export class SotwStream extends XdsStream {
  readonly flavour = 'sotw' as const;
  declare readonly types: Map<string, SotwTypeState>;

  /** Handles one DiscoveryRequest; throws ProtocolError for requests that end the stream. */
  onRequest(req: DiscoveryRequest): void {
    const typeUrl = this.identify(req.node, req.type_url);
    const names = req.resource_names ?? [];
    checkRequestNames([names], this.host.limits);
    let st = this.types.get(typeUrl);
    const first = !st;
    if (!st) this.types.set(typeUrl, (st = new SotwTypeState(typeUrl)));
    st.requests++;
    // The names are the client's whole current wish, so they are honoured even from a request
    // with a stale nonce; only ACK/NACK meaning is tied to the latest nonce.
    const subscriptionChanged = st.replaceNames(names, first);
    if (subscriptionChanged || first) {
      this.checkSubscribed();
      this.retain(st);
      this.joinSelected(typeUrl, st.wildcard, st.names);
    }

    this.settle(st, req.response_nonce, req.error_detail);

    if (!req.response_nonce) this.push(typeUrl, true); // a new (sub)stream is always answered
    else if (subscriptionChanged) this.push(typeUrl);
  }

  /** Keeps the cache's view of this stream's selection memoized while it holds it. */
  private retain(st: SotwTypeState): void {
    if (st.retainedKey === st.selectionKey) return;
    const cache = this.host.cache;
    cache.retainView(this.group, st.typeUrl, st.selectionKey);
    if (st.retainedKey) cache.releaseView(this.group, st.typeUrl, st.retainedKey);
    st.retainedKey = st.selectionKey;
  }

  override close(): void {
    if (!this.closed) for (const st of this.types.values()) if (st.retainedKey) this.host.cache.releaseView(this.group, st.typeUrl, st.retainedKey);
    super.close();
  }

  /** Runs for every subscribed stream on each change: no closures, one allocation (the
   *  cached response body with this stream's nonce appended). */
  protected push(typeUrl: string, force = false): void {
    const st = this.types.get(typeUrl);
    if (!st || !this.mayWrite(typeUrl, force)) return;
    const view = this.viewFor(st);
    // Unchanged content is never re-sent, and in particular not a version the client NACKed.
    if (!force && view.version === st.sentVersion) return;
    const clustersBefore = typeUrl === TypeUrl.Cluster ? st.sent : undefined;
    const response = framed(view, st);
    st.sent = view.resources;
    st.sentVersion = view.version;
    st.sentAt = Date.now();
    st.nonce = response.nonce;
    st.awaiting = true;
    this.write(response.bytes);
    if (this.types.size < PUSH_TYPES) this.joinReferenced(st);
    if (clustersBefore) this.resendEndpointsOf(st.sent, clustersBefore);
  }

  /** A (re)sent cluster warms only after its endpoints arrive: resend them after it. */
  private resendEndpointsOf(now: ReadonlyMap<string, Resource>, before: ReadonlyMap<string, Resource>): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds || this.closed) return;
    for (const [name, cluster] of now) {
      if (before.get(name)?.version === cluster.version) continue;
      const edsNames = cluster.refs[TypeUrl.ClusterLoadAssignment] ?? [];
      if (edsNames.some((n) => eds.selects(n))) return this.push(TypeUrl.ClusterLoadAssignment, true);
    }
  }

  /** The cache's view, plus resources the client must keep until nothing it holds uses them. */
  private viewFor(st: TypeState): View {
    const cache = this.host.cache;
    const base = cache.view(this.group, st.typeUrl, st.wildcard ? WILDCARD : st.names, st.selectionKey);
    st.retaining = false;
    if (base.version === st.sentVersion || st.sent.size === 0) return base;
    const kept: Resource[] = [];
    for (const [name, r] of st.sent)
      if (!base.resources.has(name) && st.selects(name) && this.isReferenced(st.typeUrl, name)) kept.push(r);
    if (kept.length === 0) return base;
    st.retaining = true;
    return cache.compose(st.typeUrl, [...base.resources.values(), ...kept]);
  }
}

/** The types a client of every kind subscribes to: below that, some referenced type may be missing. */
const PUSH_TYPES = 4;

/** The view's response with a nonce this type state has not seen: the view's shared one, made on
 *  first use with the next sequence number, or — when this stream already had it or a later one
 *  (a forced re-send of the same view) — one of its own. */
function framed(view: View, st: SotwTypeState): SharedResponse {
  const shared = view.shared;
  if (shared && shared.seq > st.lastSeq) {
    st.lastSeq = shared.seq;
    return shared;
  }
  const seq = ++nonceSeq;
  const nonce = String(seq);
  const response = { seq, nonce, bytes: appendStringField(view.body, Field.response.nonce, nonce) };
  if (!shared) view.shared = response;
  st.lastSeq = seq;
  return response;
}
