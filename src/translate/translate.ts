// Pure: desired routing per service → Envoy resources per client flavour.
import { clusterName } from '../model/service.js';
import { encodeMessage, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { makeResource } from '../xds/resource.js';
import { clusterResources, loadAssignmentResources } from './clusters.js';
import type { EnvoyListenerOptions } from './listeners.js';
import { apiListener, socketListener } from './listeners.js';
import type { Flavour, Routing } from './routing.js';
import { virtualHost } from './routes.js';

export type ResourcesByType = Record<string, Resource[]>;

const LISTENER = 'envoy.config.listener.v3.Listener';
const ROUTE_CONFIGURATION = 'envoy.config.route.v3.RouteConfiguration';

function routeResource(name: string, virtualHosts: object[], routings: readonly Routing[]): Resource {
  const clusters = routings.flatMap((r) => [
    ...r.split.map((s) => clusterName(r.service.name, s.version, r.service)),
    ...r.headerRoutes.map((h) => clusterName(r.service.name, h.version, r.service)),
  ]);
  return makeResource(
    TypeUrl.RouteConfiguration,
    name,
    encodeMessage(ROUTE_CONFIGURATION, { name, virtual_hosts: virtualHosts }),
    { [TypeUrl.Cluster]: [...new Set(clusters)] },
  );
}

/** Resources for proxyless gRPC clients: one API listener and route configuration per service. */
export function translateGrpc(routings: readonly Routing[]): ResourcesByType {
  const out = emptyByType();
  for (const r of routings) {
    const name = r.service.name;
    out[TypeUrl.Listener]!.push(
      makeResource(TypeUrl.Listener, name, encodeMessage(LISTENER, apiListener(name)), {
        [TypeUrl.RouteConfiguration]: [name],
      }),
    );
    out[TypeUrl.RouteConfiguration]!.push(routeResource(name, [virtualHost(r, 'grpc')], [r]));
    addClusters(out, r, 'grpc');
  }
  return out;
}

/** Resources for Envoy: one socket listener whose route configuration has a virtual host per service. */
export function translateEnvoy(routings: readonly Routing[], listener: EnvoyListenerOptions): ResourcesByType {
  const out = emptyByType();
  const sorted = [...routings].sort((a, b) => (a.service.name < b.service.name ? -1 : 1));
  out[TypeUrl.Listener]!.push(
    makeResource(TypeUrl.Listener, listener.name, encodeMessage(LISTENER, socketListener(listener)), {
      [TypeUrl.RouteConfiguration]: [listener.name],
    }),
  );
  out[TypeUrl.RouteConfiguration]!.push(
    routeResource(listener.name, sorted.map((r) => virtualHost(r, 'envoy')), sorted),
  );
  for (const r of sorted) addClusters(out, r, 'envoy');
  return out;
}

function addClusters(out: ResourcesByType, r: Routing, flavour: Flavour): void {
  out[TypeUrl.Cluster]!.push(...clusterResources(r.service, flavour));
  out[TypeUrl.ClusterLoadAssignment]!.push(...loadAssignmentResources(r.service));
}

function emptyByType(): ResourcesByType {
  return {
    [TypeUrl.Listener]: [],
    [TypeUrl.RouteConfiguration]: [],
    [TypeUrl.Cluster]: [],
    [TypeUrl.ClusterLoadAssignment]: [],
  };
}
