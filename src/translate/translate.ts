// Pure: desired routing per service → Envoy resources per client flavour. `Translator` adds a
// per-service memo, so a change to one service re-encodes only that service's resources.
import { clusterName } from '../model/service.js';
import { encodeMessage, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { makeResource } from '../xds/resource.js';
import { bytesField } from '../xds/wire.js';
import { clusterResources, loadAssignmentResources } from './clusters.js';
import type { EnvoyListenerOptions } from './listeners.js';
import { apiListener, socketListener } from './listeners.js';
import type { Routing } from './routing.js';
import { virtualHost } from './routes.js';

export type ResourcesByType = Record<string, Resource[]>;

const LISTENER = 'envoy.config.listener.v3.Listener';
const ROUTE_CONFIGURATION = 'envoy.config.route.v3.RouteConfiguration';
const VIRTUAL_HOST = 'envoy.config.route.v3.VirtualHost';
/** RouteConfiguration field numbers, for assembling one from encoded virtual hosts. */
const RC_NAME = 1;
const RC_VIRTUAL_HOSTS = 2;

/** Clusters a service's routes send traffic to (a route must never outlive them on a client). */
function routedClusters(r: Routing): string[] {
  const names = [...r.split.map((s) => s.version), ...r.headerRoutes.map((h) => h.version)].map((v) =>
    clusterName(r.service.name, v, r.service),
  );
  return [...new Set(names)];
}

/** Everything a proxyless gRPC client needs for one service. */
function grpcResources(r: Routing): Resource[] {
  const name = r.service.name;
  return [
    makeResource(TypeUrl.Listener, name, encodeMessage(LISTENER, apiListener(name)), { [TypeUrl.RouteConfiguration]: [name] }),
    makeResource(
      TypeUrl.RouteConfiguration,
      name,
      encodeMessage(ROUTE_CONFIGURATION, { name, virtual_hosts: [virtualHost(r, 'grpc')] }),
      { [TypeUrl.Cluster]: routedClusters(r) },
    ),
    ...clusterResources(r.service, 'grpc'),
    ...loadAssignmentResources(r.service),
  ];
}

/** One service's share of the Envoy configuration: its encoded virtual host and its clusters. */
interface EnvoyPart {
  vhost: Uint8Array;
  routed: string[];
  resources: Resource[];
}

function envoyPart(r: Routing): EnvoyPart {
  return {
    vhost: encodeMessage(VIRTUAL_HOST, virtualHost(r, 'envoy')),
    routed: routedClusters(r),
    resources: [...clusterResources(r.service, 'envoy'), ...loadAssignmentResources(r.service)],
  };
}

function envoyResources(listener: Resource, routeName: string, parts: readonly EnvoyPart[]): ResourcesByType {
  // A message is the concatenation of its fields: the route configuration is its name plus the
  // already-encoded virtual hosts.
  const routeBytes = Buffer.concat([bytesField(RC_NAME, routeName), ...parts.map((p) => bytesField(RC_VIRTUAL_HOSTS, p.vhost))]);
  const route = makeResource(TypeUrl.RouteConfiguration, routeName, routeBytes, {
    [TypeUrl.Cluster]: [...new Set(parts.flatMap((p) => p.routed))],
  });
  return byType([listener, route, ...parts.flatMap((p) => p.resources)]);
}

function envoyListener(opts: EnvoyListenerOptions): Resource {
  return makeResource(TypeUrl.Listener, opts.name, encodeMessage(LISTENER, socketListener(opts)), {
    [TypeUrl.RouteConfiguration]: [opts.name],
  });
}

const byName = (a: Routing, b: Routing) => (a.service.name < b.service.name ? -1 : a.service.name > b.service.name ? 1 : 0);

/** Resources for proxyless gRPC clients: one API listener and route configuration per service. */
export function translateGrpc(routings: readonly Routing[]): ResourcesByType {
  return byType(routings.flatMap(grpcResources));
}

/** Resources for Envoy: one socket listener whose route configuration has a virtual host per service. */
export function translateEnvoy(routings: readonly Routing[], listener: EnvoyListenerOptions): ResourcesByType {
  return envoyResources(envoyListener(listener), listener.name, [...routings].sort(byName).map(envoyPart));
}

/** The same translation, remembering each service's output until its routing changes. */
export class Translator {
  private readonly grpcMemo: Memo<Resource[]> = new Map();
  private readonly envoyMemo: Memo<EnvoyPart> = new Map();
  private readonly listener: Resource;

  constructor(private readonly envoyListenerOptions: EnvoyListenerOptions) {
    this.listener = envoyListener(envoyListenerOptions);
  }

  grpc(routings: readonly Routing[]): ResourcesByType {
    return byType(routings.flatMap((r) => remember(this.grpcMemo, r, grpcResources)));
  }

  envoy(routings: readonly Routing[]): ResourcesByType {
    const parts = [...routings].sort(byName).map((r) => remember(this.envoyMemo, r, envoyPart));
    return envoyResources(this.listener, this.envoyListenerOptions.name, parts);
  }

  /** Drops services that are gone (call after a publish). */
  forgetAllBut(routings: readonly Routing[]): void {
    const live = new Set(routings.map((r) => r.service.name));
    for (const memo of [this.grpcMemo, this.envoyMemo]) for (const name of memo.keys()) if (!live.has(name)) memo.delete(name);
  }
}

/** Per service name: the routing it was built from (as JSON) and what was built. */
type Memo<T> = Map<string, { key: string; value: T }>;

function remember<T>(memo: Memo<T>, r: Routing, build: (r: Routing) => T): T {
  const key = JSON.stringify(r);
  const hit = memo.get(r.service.name);
  if (hit && hit.key === key) return hit.value;
  const value = build(r);
  memo.set(r.service.name, { key, value });
  return value;
}

function byType(resources: readonly Resource[]): ResourcesByType {
  const out: ResourcesByType = {
    [TypeUrl.Listener]: [],
    [TypeUrl.RouteConfiguration]: [],
    [TypeUrl.Cluster]: [],
    [TypeUrl.ClusterLoadAssignment]: [],
  };
  for (const r of resources) out[r.typeUrl]!.push(r);
  return out;
}
