// Incremental (delta) xDS on one stream: per-resource versions, subscribe/unsubscribe,
// removed_resources, and initial_resource_versions on reconnect.
import type { RawNode } from './node.js';
import { TypeUrl } from './protos.js';
import type { Resource } from './resource.js';
import { hashBytes } from './resource.js';
import { Field, bytesField } from './wire.js';
import type { Convergence } from './stream.js';
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

/** Delta bookkeeping on top of the shared per-type state. */
class DeltaTypeState extends TypeState {
  /** What the client holds, as far as we know: name → version. Updated when we send, so a
   *  NACKed version is not sent again. */
  known = new Map<string, string>();
  /** Names just subscribed that the client does not hold: if they do not exist, say so
   *  (in removed_resources) rather than leave the client waiting for its fetch timeout. */
  askedFor = new Set<string>();
}

export class DeltaStream extends XdsStream {
  readonly flavour = 'delta' as const;
  declare readonly types: Map<string, DeltaTypeState>;

  onRequest(req: DeltaDiscoveryRequest): void {
    const typeUrl = this.identify(req.node, req.type_url);
    let st = this.types.get(typeUrl);
    const first = !st;
    if (!st) {
      st = new DeltaTypeState(typeUrl);
      this.types.set(typeUrl, st);
      st.legacyWildcard = (req.resource_names_subscribe ?? []).length === 0;
      st.wildcard = st.legacyWildcard;
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) st.known.set(name, version);
    }
    // Subscription changes count whatever the nonce says.
    for (const name of req.resource_names_subscribe ?? []) {
      if (name === '*') st.wildcard = true;
      else {
        st.names.add(name);
        if (!st.known.has(name)) st.askedFor.add(name);
      }
    }
    for (const name of req.resource_names_unsubscribe ?? []) {
      if (name === '*') {
        st.wildcard = false;
        st.legacyWildcard = false;
        // The client drops what only the wildcard gave it; a later subscription resends it.
        for (const held of [...st.known.keys()]) if (!st.names.has(held)) st.known.delete(held);
      } else {
        st.names.delete(name);
        if (!st.wildcard) st.known.delete(name);
      }
    }

    this.settle(st, req.response_nonce, req.error_detail);
    this.push(typeUrl, first);
  }

  protected push(typeUrl: string, force = false): void {
    const st = this.types.get(typeUrl);
    if (!st) return;
    let clustersChanged: Resource[] = [];
    this.writeOrDefer(typeUrl, () => {
      const all = this.host.cache.resources(this.group, typeUrl);
      const changed: Resource[] = [];
      const holding = new Map<string, Resource>();
      const consider = (r: Resource) => {
        holding.set(r.name, r);
        if (st.known.get(r.name) !== r.version) changed.push(r);
      };
      if (st.wildcard) for (const r of all.values()) consider(r);
      else for (const name of st.names) {
        const r = all.get(name);
        if (r) consider(r);
      }
      const removed: string[] = [];
      st.retaining = false;
      for (const name of st.known.keys()) {
        if (holding.has(name) || !st.selects(name)) continue;
        const kept = st.sent.get(name);
        if (kept && this.isReferenced(typeUrl, name)) {
          holding.set(name, kept); // make before break: drop it once nothing refers to it
          st.retaining = true;
        } else removed.push(name);
      }
      for (const name of st.askedFor) if (!holding.has(name) && !removed.includes(name)) removed.push(name);
      st.askedFor.clear();
      if (!force && changed.length === 0 && removed.length === 0) return undefined;

      for (const r of changed) st.known.set(r.name, r.version);
      for (const name of removed) st.known.delete(name);
      const nonce = this.nextNonce();
      st.sent = holding;
      st.sentVersion = hashBytes(typeUrl, ...[...st.known].sort().map(([n, v]) => `\n${n}\0${v}`));
      st.sentAt = new Date();
      st.nonce = nonce;
      st.awaiting = true;
      if (typeUrl === TypeUrl.Cluster) clustersChanged = changed;
      return Buffer.concat([
        bytesField(Field.deltaResponse.systemVersionInfo, st.sentVersion),
        ...changed.map((r) => r.deltaField),
        bytesField(Field.deltaResponse.typeUrl, typeUrl),
        ...removed.map((n) => bytesField(Field.deltaResponse.removedResources, n)),
        bytesField(Field.deltaResponse.nonce, nonce),
        this.host.cache.deltaControlPlaneField,
      ]);
    }, force);
    if (clustersChanged.length > 0) this.resendEndpointsOf(clustersChanged);
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

  convergence(typeUrl: string): Convergence {
    const st = this.types.get(typeUrl);
    if (!st) return this.willSubscribe(typeUrl) ? 'pending' : 'acked';
    const all = this.host.cache.resources(this.group, typeUrl);
    const upToDate = [...all.values()].every((r) => !st.selects(r.name) || st.known.get(r.name) === r.version);
    if (upToDate && !st.awaiting && st.ackedVersion === st.sentVersion) return 'acked';
    if (upToDate && st.lastNack && st.lastNack.version === st.sentVersion) return 'rejected';
    return 'pending';
  }
}
