// The kinds of xDS client Sluice serves. Each turns a service's routing into its share of that
// kind's configuration and assembles the shares into the complete set its nodes receive.
import { TypeUrl } from '../xds/protos.js';
import type { XdsNode } from '../xds/node.js';
import type { Resource } from '../xds/resource.js';
import type { Routing } from './routing.js';

export type ResourcesByType = Record<string, Resource[]>;

export type KindName = 'envoy' | 'grpc';

/** One service's share of a kind's configuration. */
export interface ServicePart {
  readonly service: string;
  /** Resources named after this service's versions (clusters, endpoints, ...): a name used by
   *  two services' parts is a clash, and the later part is left out. */
  readonly resources: readonly Resource[];
}

export interface ClientKind<P extends ServicePart = ServicePart> {
  /** The cache group its nodes are served from. */
  readonly name: KindName;
  /** Pure: the same routing gives equal bytes (the translator memoizes on it). Throws when the
   *  routing cannot be expressed for this kind. */
  part(routing: Routing): P;
  /** Resources built from the parts of every service together (the listener, a route
   *  configuration shared by all services), given the parts in service-name order; [] when
   *  everything is per service. Publishing calls it whenever a part changes: a kind that does
   *  not read `parts` costs nothing per service. */
  shared(parts: Iterable<P>): Resource[];
  /** Everything this kind's nodes receive, from the parts of every service (sorted by name):
   *  the shared resources and every part's own. */
  assemble(parts: readonly P[]): ResourcesByType;
}

/** `assemble` for every kind: the shared resources, then each part's own, by type. */
export function assembleParts<P extends ServicePart>(kind: ClientKind<P>, parts: readonly P[]): ResourcesByType {
  return byType([...kind.shared(parts), ...parts.flatMap((p) => p.resources)]);
}

/**
 * Envoy gets socket listeners, anything else (proxyless gRPC) API listeners; the user agent
 * tells them apart, and node metadata `sluice.flavour: envoy|grpc` overrides it.
 */
export function kindOf(node: XdsNode): KindName {
  const declared = node.metadata['sluice.flavour'];
  if (declared === 'envoy' || declared === 'grpc') return declared;
  return node.userAgentName.toLowerCase() === 'envoy' ? 'envoy' : 'grpc';
}

export function byType(resources: readonly Resource[]): ResourcesByType {
  const out: ResourcesByType = {
    [TypeUrl.Listener]: [],
    [TypeUrl.RouteConfiguration]: [],
    [TypeUrl.Cluster]: [],
    [TypeUrl.ClusterLoadAssignment]: [],
    [TypeUrl.ScopedRouteConfiguration]: [],
  };
  for (const r of resources) out[r.typeUrl]!.push(r);
  return out;
}
