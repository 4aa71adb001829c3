// The fields each kind of client reads. Envoy and proxyless gRPC take the same xDS resources but
// not the same fields: gRPC clients ignore route timeouts and hash policies, older C-core NACKs
// `string_match`, grpc-js rejects `contains_match`, only gRPC clients report load to the xDS
// server itself, only Envoy mirrors requests. A dialect says, per concern, what one kind of
// client is sent.
import type { NamedService, Version } from '../model/service.js';
import type { HashSticky, RouteMatcher } from './routing.js';

export interface Dialect {
  /** A RouteMatch.headers entry for a header matched by value (not `present`). */
  headerValueMatch(header: string, m: RouteMatcher): object;
  /** A RouteMatch.headers entry matching a header against a full-match RE2 regex. */
  headerRegexMatch(header: string, regex: string): object;
  /** Timeout and retries of the service, in the route fields this client reads. */
  routePolicy(service: NamedService): object;
  /** Fields that keep a user on one version while weights move by hashing a header or cookie,
   *  or undefined when this kind cannot (then the weighted split stays random per request).
   *  Bucket stickiness needs none: it is header routes every kind honours (routes.ts). */
  stickySplit(sticky: HashSticky): { weightedClusters: object; routeAction: object } | undefined;
  /** Cluster fields beyond the EDS basics for a version. */
  clusterExtras(version: Version): object;
  /** RouteAction fields that copy `percent` of a route's requests to `cluster` and discard its
   *  answers, or undefined when this kind cannot mirror: then its routes do not change at all. */
  mirrorPolicy(cluster: string, percent: number): object | undefined;
  /** Whether versions without traffic (Routing.held) stay in the route at weight 0. Clients
   *  that subscribe to clusters by name drop a cluster the route stops naming (a CDS and an EDS
   *  request) and fetch and warm it again when it comes back; a 0-weight entry keeps it. */
  readonly holdsIdleVersions: boolean;
}
