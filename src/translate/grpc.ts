// Proxyless gRPC clients (gRFC A27 and later): an API listener and a route configuration per
// service (`xds:///echo` asks for listener `echo`), clusters that report load to Sluice.
import type { Version } from '../model/service.js';
import { GRPC_RETRY_ON } from '../model/service.js';
import { encodeMessage, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { makeResource } from '../xds/resource.js';
import type { ClientKind, ResourcesByType, ServicePart } from './client-kind.js';
import { assembleParts } from './client-kind.js';
import { clusterResources, loadAssignmentResources } from './clusters.js';
import type { Dialect } from './dialect.js';
import { apiListener } from './listeners.js';
import { duration, legacyHeaderMatch, routedClusters, virtualHost } from './routes.js';
import type { RouteMatcher, Routing } from './routing.js';

export const grpcDialect: Dialect = {
  /**
   * gRPC clients before gRFC A63 (C-core < 1.56, e.g. Debian 12's 1.51) NACK `string_match`;
   * grpc-js rejects the old `contains_match`: the older fields with "contains" as a regex work
   * on every generation.
   */
  headerValueMatch: (name: string, m: RouteMatcher) => ({ name, ...legacyHeaderMatch(m) }),
  headerRegexMatch: (name: string, regex: string) => ({ name, safe_regex_match: { regex } }),
  routePolicy(service) {
    const out: Record<string, unknown> = {};
    // gRPC clients ignore the route timeout and read max_stream_duration (gRFC A31).
    if (service.timeout) out.max_stream_duration = { max_stream_duration: duration(service.timeout) };
    const r = service.retries;
    const on = r ? r.on.filter((c) => GRPC_RETRY_ON.includes(c)) : [];
    // gRPC retries only on gRPC status codes and has no per-try timeout.
    if (r && on.length > 0) out.retry_policy = { retry_on: on.join(','), num_retries: { value: r.attempts - 1 } };
    return out;
  },
  // gRPC ignores hash-based picking of weighted clusters: the split stays random per request.
  stickySplit: () => undefined,
  // Proxyless clients report per-cluster load (successes, errors) to the xDS server itself:
  // the data-plane telemetry that canary analysis reads.
  clusterExtras: (_version: Version) => ({ lrs_server: { self: {} } }),
  // gRPC clients have no request mirroring: a mirror changes nothing they are sent.
  mirrorPolicy: () => undefined,
  // gRPC clients subscribe to clusters by name: a 0-weight entry keeps a rolled-back canary
  // subscribed in grpc-js, so neither the rollback nor the next rollout re-subscribes anything.
  holdsIdleVersions: true,
};

const LISTENER = 'envoy.config.listener.v3.Listener';
const ROUTE_CONFIGURATION = 'envoy.config.route.v3.RouteConfiguration';

export class GrpcKind implements ClientKind {
  readonly name = 'grpc' as const;

  part(r: Routing): ServicePart {
    const name = r.service.name;
    const own: Resource[] = [
      makeResource(TypeUrl.Listener, name, encodeMessage(LISTENER, apiListener(name)), { [TypeUrl.RouteConfiguration]: [name] }, [name]),
      makeResource(
        TypeUrl.RouteConfiguration,
        name,
        encodeMessage(ROUTE_CONFIGURATION, { name, virtual_hosts: [virtualHost(r, grpcDialect)] }),
        { [TypeUrl.Cluster]: routedClusters(r, grpcDialect) },
        [name],
      ),
    ];
    return { service: name, resources: [...own, ...clusterResources(r.service, grpcDialect), ...loadAssignmentResources(r.service)] };
  }

  /** Everything a gRPC node gets is some service's own. */
  shared(): Resource[] {
    return [];
  }

  assemble(parts: readonly ServicePart[]): ResourcesByType {
    return assembleParts(this, parts);
  }
}
