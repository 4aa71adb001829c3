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
  /** Everything this kind's nodes receive, from the parts of every service (sorted by name). */
  assemble(parts: readonly P[]): ResourcesByType;
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
  };
  for (const r of resources) out[r.typeUrl]!.push(r);
  return out;
}
