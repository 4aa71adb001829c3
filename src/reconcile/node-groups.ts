// Which configuration a node receives: its kind of client (Envoy or proxyless gRPC), narrowed to
// the services it asks for (node metadata `sluice.services`, like Istio's Sidecar egress hosts)
// and, when a policy restricts it, to the services it may read. Nodes with the same kind and the
// same services share one cache group, so a change is encoded once per group, and a change to a
// service outside a group sends its nodes nothing.
import { createHash } from 'node:crypto';
import { NAME } from '../model/service.js';
import type { KindName } from '../translate/client-kind.js';
import { kindOf } from '../translate/client-kind.js';
import type { XdsNode } from '../xds/node.js';
import type { XdsPeer } from '../xds/peer.js';
import { NO_PEER } from '../xds/peer.js';

/** Every service, or these. */
export type Scope = '*' | ReadonlySet<string>;

export interface GroupSpec {
  kind: KindName;
  services: Scope;
}

/** Restricts what a node, connected from a peer, may read (the xDS access policy); '*' = no
 *  restriction. */
export type ReadPolicy = (node: XdsNode, peer: XdsPeer) => Scope;

export const SERVICES_METADATA_KEY = 'sluice.services';

/** The services a node asks for in its metadata: a list of names or a comma-separated string. */
export function requestedServices(node: XdsNode): Scope {
  const raw = node.metadata[SERVICES_METADATA_KEY];
  const names = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
  if (!names) return '*';
  return new Set(names.filter((n): n is string => typeof n === 'string').map((n) => n.trim()).filter((n) => NAME.test(n)));
}

export function intersect(a: Scope, b: Scope): Scope {
  if (a === '*') return b;
  if (b === '*') return a;
  return new Set([...a].filter((n) => b.has(n)));
}

export function inScope(scope: Scope, service: string): boolean {
  return scope === '*' || scope.has(service);
}

export class NodeGroups {
  private readonly specs = new Map<string, GroupSpec>();
  /** Specs registered by groupOf whose group has not become active (a Fetch, or a node refused
   *  right after): they are needed only until the end of the call that registered them. */
  private readonly unclaimed = new Set<string>();

  constructor(private readonly policy: ReadPolicy = () => '*') {}

  /** The cache group a node is served from, registered until `forget` once `activated`. */
  groupOf(node: XdsNode, peer: XdsPeer = NO_PEER): string {
    const { id, spec } = this.resolve(node, peer);
    if (spec && !this.specs.has(id)) {
      // Whatever a client makes up (Fetch after Fetch with new metadata) costs one spec at most.
      for (const g of this.unclaimed) this.specs.delete(g);
      this.unclaimed.clear();
      this.specs.set(id, spec);
      this.unclaimed.add(id);
    }
    return id;
  }

  /** The group `groupOf` would give, without registering it (to compare after a policy change). */
  groupIdOf(node: XdsNode, peer: XdsPeer = NO_PEER): string {
    return this.resolve(node, peer).id;
  }

  /** A group has a node now: its spec stays until `forget`. */
  activated(group: string): void {
    this.unclaimed.delete(group);
  }

  private resolve(node: XdsNode, peer: XdsPeer): { id: string; spec?: GroupSpec } {
    const kind = kindOf(node);
    const services = intersect(requestedServices(node), this.policy(node, peer));
    if (services === '*') return { id: kind }; // the kind's own group always exists
    const sorted = [...services].sort();
    // A short stable id: metric labels and logs carry the group.
    const id = `${kind}~${createHash('sha256').update(sorted.join('\n')).digest('base64url').slice(0, 12)}`;
    return { id, spec: { kind, services: new Set(sorted) } };
  }

  /** What a group serves; the kind groups ('envoy', 'grpc') serve every service. */
  spec(group: string): GroupSpec | undefined {
    if (group === 'envoy' || group === 'grpc') return { kind: group, services: '*' };
    return this.specs.get(group);
  }

  forget(group: string): void {
    this.specs.delete(group);
    this.unclaimed.delete(group);
  }
}

/** The kind of client a group serves (for metric labels). */
export function kindOfGroup(group: string): string {
  const i = group.indexOf('~');
  return i < 0 ? group : group.slice(0, i);
}
