// Envoy with scoped routes (`--envoy-routes scoped`): the socket listener's HTTP connection manager
// picks a routing scope by the request's host, and each service has its own route configuration.
// Over delta xDS a change to one service then sends an Envoy that routes to every service that
// service's route configuration only, not one route configuration with every virtual host (a
// state-of-the-world Envoy still gets every route configuration it holds, as the protocol wants).
// The price: a scope key is an exact host, so a service's domains must be host names (optionally
// with a port or `:*`); `*`, `*.example.com` and `web*` cannot be routed this way (docs/envoy.md).
import { domainsOf } from '../model/service.js';
import type { NamedService } from '../model/service.js';
import { encodeMessage, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { makeResource } from '../xds/resource.js';
import type { ClientKind, ResourcesByType, ServicePart } from './client-kind.js';
import { assembleParts } from './client-kind.js';
import { clusterResources, loadAssignmentResources } from './clusters.js';
import { envoyDialect } from './envoy.js';
import type { EnvoyListenerOptions } from './listeners.js';
import { socketListener } from './listeners.js';
import { routedClusters, virtualHost } from './routes.js';
import type { Routing } from './routing.js';

const LISTENER = 'envoy.config.listener.v3.Listener';
const ROUTE_CONFIGURATION = 'envoy.config.route.v3.RouteConfiguration';
const SCOPE = 'envoy.config.route.v3.ScopedRouteConfiguration';

/** The scope key of a domain: the host, lower case, without its port (`Web:8080` → `web`), or
 *  an error saying why the domain cannot be a scope key. */
export function scopeKeyOf(domain: string): string {
  const colon = domain.lastIndexOf(':');
  const host = colon < 0 ? domain : domain.slice(0, colon);
  if (host === '' || host.includes('*'))
    throw new Error(
      `domain "${domain}" is not an exact host name: Envoy scoped routes (--envoy-routes scoped) pick a route configuration by the exact Host header, without wildcards`,
    );
  return host.toLowerCase();
}

/** The scope keys of a service: one per distinct host of its domains. */
export function scopeKeysOf(service: NamedService): string[] {
  return [...new Set(domainsOf(service).map(scopeKeyOf))].sort();
}

export class ScopedEnvoyKind implements ClientKind {
  readonly name = 'envoy' as const;
  private readonly listener: Resource;

  constructor(listenerOptions: EnvoyListenerOptions) {
    // The scopes come over ADS by wildcard: the listener points at no resource by name.
    this.listener = makeResource(TypeUrl.Listener, listenerOptions.name, encodeMessage(LISTENER, socketListener(listenerOptions, 'scoped')));
  }

  /**
   * A service's route configuration (named after the service, one virtual host), a scope per host
   * it answers to (named after the host), its clusters and endpoints. Two services answering to
   * one host make the same scope name: the reconciler leaves the later one out and says so.
   */
  part(r: Routing): ServicePart {
    const name = r.service.name;
    const routes = makeResource(
      TypeUrl.RouteConfiguration,
      name,
      encodeMessage(ROUTE_CONFIGURATION, { name, virtual_hosts: [virtualHost(r, envoyDialect)] }),
      { [TypeUrl.Cluster]: routedClusters(r, envoyDialect) },
      [name],
    );
    const scopes = scopeKeysOf(r.service).map((key) =>
      makeResource(
        TypeUrl.ScopedRouteConfiguration,
        key,
        encodeMessage(SCOPE, { name: key, route_configuration_name: name, key: { fragments: [{ string_key: key }] } }),
        { [TypeUrl.RouteConfiguration]: [name] },
        [name],
      ),
    );
    return { service: name, resources: [routes, ...scopes, ...clusterResources(r.service, envoyDialect), ...loadAssignmentResources(r.service)] };
  }

  /** The listener only: routes, scopes and clusters are each service's own. */
  shared(): Resource[] {
    return [this.listener];
  }

  assemble(parts: readonly ServicePart[]): ResourcesByType {
    return assembleParts(this, parts);
  }
}
