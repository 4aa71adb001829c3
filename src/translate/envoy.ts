// Envoy: one socket listener whose HTTP connection manager takes its routes over RDS, one route
// configuration with a virtual host per service, and the clusters of every version.
import { encodeMessage, packAny, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { hashBytes, makeResource } from '../xds/resource.js';
import { bytesField } from '../xds/wire.js';
import type { ClientKind, ResourcesByType, ServicePart } from './client-kind.js';
import { assembleParts } from './client-kind.js';
import { clusterResources, loadAssignmentResources } from './clusters.js';
import type { Dialect } from './dialect.js';
import type { EnvoyListenerOptions } from './listeners.js';
import { socketListener } from './listeners.js';
import { duration, routedClusters, stringMatch, virtualHost } from './routes.js';
import type { RouteMatcher, Routing } from './routing.js';

export const envoyDialect: Dialect = {
  // Envoy deprecated the per-kind header fields for `string_match`.
  headerValueMatch: (name: string, m: RouteMatcher) => ({ name, string_match: stringMatch(m) }),
  headerRegexMatch: (name: string, regex: string) => ({ name, string_match: { safe_regex: { regex } } }),
  routePolicy(service) {
    const out: Record<string, unknown> = {};
    if (service.timeout) out.timeout = duration(service.timeout);
    const r = service.retries;
    if (r)
      out.retry_policy = {
        retry_on: r.on.join(','),
        num_retries: { value: r.attempts - 1 },
        ...(r.perTryTimeout ? { per_try_timeout: duration(r.perTryTimeout) } : {}),
      };
    return out;
  },
  // Envoy 1.36+: the weighted cluster is picked by the route's hash policy, so one user keeps
  // one version while the weights move.
  stickySplit: (sticky) => ({
    weightedClusters: { use_hash_policy: { value: true } },
    routeAction: { hash_policy: ['header' in sticky ? { header: { header_name: sticky.header } } : { cookie: { name: sticky.cookie } }] },
  }),
  clusterExtras: (version) =>
    version.protocol === 'http2' || version.protocol === 'grpc'
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': packAny('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', {
              explicit_http_config: { http2_protocol_options: {} },
            }),
          },
        }
      : {},
  // Fire and forget: Envoy sends the copy to the canary cluster (Host suffixed "-shadow"), does
  // not wait for it, and counts it in that cluster's upstream stats. The fraction's runtime key
  // is left empty: Envoy then always uses the default value (as it does for a policy without
  // a fraction, which means 100%).
  mirrorPolicy: (cluster, percent) => ({
    request_mirror_policies: [{ cluster, runtime_fraction: { default_value: fractionOf(percent) } }],
  }),
  // Envoy subscribes to every cluster by wildcard: it keeps the canary's cluster whatever the
  // routes say, so a rollback stays a plain route to stable.
  holdsIdleVersions: false,
};

/** A percent with up to 2 decimals as Envoy's FractionalPercent: per hundred when whole, else per ten thousand. */
export function fractionOf(percent: number): { numerator: number; denominator: 'HUNDRED' | 'TEN_THOUSAND' } {
  return Number.isInteger(percent) ? { numerator: percent, denominator: 'HUNDRED' } : { numerator: Math.round(percent * 100), denominator: 'TEN_THOUSAND' };
}

const LISTENER = 'envoy.config.listener.v3.Listener';
const VIRTUAL_HOST = 'envoy.config.route.v3.VirtualHost';
/** RouteConfiguration field numbers, for assembling one from encoded virtual hosts. */
const RC_NAME = 1;
const RC_VIRTUAL_HOSTS = 2;

/** One service's share: its encoded virtual host and its clusters. */
export interface EnvoyPart extends ServicePart {
  readonly vhost: Uint8Array;
  /** `vhost` as a RouteConfiguration.virtual_hosts field, ready to be concatenated. */
  readonly vhostField: Buffer;
  /** Hash of `vhost`: the service's fragment of the shared route configuration. */
  readonly vhostVersion: string;
  readonly routed: readonly string[];
}

export class EnvoyKind implements ClientKind<EnvoyPart> {
  readonly name = 'envoy' as const;
  private readonly listener: Resource;

  constructor(private readonly listenerOptions: EnvoyListenerOptions) {
    this.listener = makeResource(TypeUrl.Listener, listenerOptions.name, encodeMessage(LISTENER, socketListener(listenerOptions)), {
      [TypeUrl.RouteConfiguration]: [listenerOptions.name],
    });
  }

  part(r: Routing): EnvoyPart {
    const vhost = encodeMessage(VIRTUAL_HOST, virtualHost(r, envoyDialect));
    return {
      service: r.service.name,
      vhost,
      vhostField: bytesField(RC_VIRTUAL_HOSTS, vhost),
      vhostVersion: hashBytes(vhost),
      routed: routedClusters(r, envoyDialect),
      resources: [...clusterResources(r.service, envoyDialect), ...loadAssignmentResources(r.service)],
    };
  }

  /** The listener and the one route configuration: every service's virtual host, in the order
   *  given (by service name). Its size follows the number of services, whatever changed. */
  shared(sorted: Iterable<EnvoyPart>): Resource[] {
    // A message is the concatenation of its fields: the route configuration is its name plus the
    // already-encoded virtual hosts.
    const name = this.listenerOptions.name;
    const fields: Buffer[] = [bytesField(RC_NAME, name)];
    // Every service owns its fragment of the shared route configuration: the hash of its virtual
    // host, so a node that ACKed a version holding a service's current virtual host counts as
    // converged for that service, whatever else changed in it.
    const owners: Record<string, string> = Object.create(null) as Record<string, string>;
    const routed = new Set<string>();
    for (const p of sorted) {
      fields.push(p.vhostField);
      owners[p.service] = p.vhostVersion;
      for (const c of p.routed) routed.add(c);
    }
    const routeBytes = Buffer.concat(fields);
    const route = makeResource(TypeUrl.RouteConfiguration, name, routeBytes, { [TypeUrl.Cluster]: [...routed] }, owners);
    return [this.listener, route];
  }

  assemble(parts: readonly EnvoyPart[]): ResourcesByType {
    return assembleParts(this, [...parts].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0)));
  }
}
