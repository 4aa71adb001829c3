// Virtual hosts and routes: header cohorts first (first match wins), then sticky bucket routes,
// then the weighted route with the canary listed first, so raising its weight keeps everyone
// already on it. A mirror share rides on the routes that carry the general traffic (the
// weighted route and the sticky route to stable), not on those that already pick the canary.
import { parseDuration } from '../model/duration.js';
import { clusterName, domainsOf } from '../model/service.js';
import type { Dialect } from './dialect.js';
import type { BucketSticky, RouteMatcher, Routing } from './routing.js';

export function virtualHost(routing: Routing, dialect: Dialect): object {
  const { service } = routing;
  const cluster = (version: string) => clusterName(service.name, version, service);
  const policy = dialect.routePolicy(service);
  const routes: object[] = routing.headerRoutes.map((hr) => ({
    name: `${service.name}/${hr.name}`,
    match: { prefix: '', ...matchersFor(hr.match, dialect) },
    route: { cluster: cluster(hr.version), ...policy },
  }));
  const mirror = mirrorFields(routing, dialect, cluster);
  if (routing.sticky && 'bucketHeader' in routing.sticky) routes.push(...bucketRoutes(routing, routing.sticky, cluster, policy, mirror));
  routes.push({ name: `${service.name}/default`, match: { prefix: '' }, route: { ...splitAction(routing, dialect, cluster), ...mirror, ...policy } });
  return { name: service.name, domains: domainsOf(service), routes };
}

export const duration = (text: string) => {
  const ms = parseDuration(text);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
};

/** The dialect's mirror fields for the routing's mirror, or none. */
function mirrorFields(routing: Routing, dialect: Dialect, cluster: (v: string) => string): object {
  return (routing.mirror && dialect.mirrorPolicy(cluster(routing.mirror.version), routing.mirror.percent)) || {};
}

function splitAction(routing: Routing, dialect: Dialect, cluster: (v: string) => string): object {
  const held = heldVersions(routing, dialect);
  // One version and nothing held: a plain cluster route.
  if (routing.split.length === 1 && held.length === 0) return { cluster: cluster(routing.split[0]!.version) };
  const sticky = routing.sticky && !('bucketHeader' in routing.sticky) ? dialect.stickySplit(routing.sticky) : undefined;
  // Held versions first (a held canary is where the canary goes), at weight 0: every gRPC
  // generation accepts a 0 entry when the weights still sum to 100 (C-core < 1.56 checks the
  // sum against total_weight's default, 100); grpc-js keeps such a cluster subscribed, C-core
  // and grpc-go skip it.
  return {
    weighted_clusters: {
      clusters: [
        ...held.map((v) => ({ name: cluster(v), weight: { value: 0 } })),
        ...routing.split.map((s) => ({ name: cluster(s.version), weight: { value: s.weight } })),
      ],
      ...sticky?.weightedClusters,
    },
    ...sticky?.routeAction,
  };
}

/** The routing's held versions this kind of client is sent (none, or all of them). */
function heldVersions(routing: Routing, dialect: Dialect): readonly string[] {
  if (!dialect.holdsIdleVersions || !routing.held) return [];
  return routing.held.filter((v) => !routing.split.some((s) => s.version === v));
}

/**
 * Bucket stickiness while both versions take traffic: buckets [0, round(w * buckets / 100)) go to
 * the canary, any other value of the header (another number, a non-integer) to stable, and
 * requests without the header fall through to the weighted split. The canary's range only
 * grows with its weight, so a bucket once on the canary stays there. `range_match` and
 * `present_match` are the same, non-deprecated fields for Envoy and every gRPC generation
 * (gRFC A28); the range's `start` is proto3's default 0 and is not written.
 */
/** How many buckets, from 0, reach the canary at this weight: round(weight * buckets / 100). */
export function canaryBuckets(weight: number, buckets: number): number {
  return Math.round((weight * buckets) / 100);
}

function bucketRoutes(routing: Routing, sticky: BucketSticky, cluster: (v: string) => string, policy: object, mirror: object): object[] {
  if (routing.split.length !== 2) return [];
  const [canary, stable] = routing.split as [{ version: string; weight: number }, { version: string; weight: number }];
  const name = sticky.bucketHeader.toLowerCase();
  const end = canaryBuckets(canary.weight, sticky.buckets);
  const routes: object[] = [];
  if (end > 0)
    routes.push({
      name: `${routing.service.name}/sticky-canary`,
      match: { prefix: '', headers: [{ name, range_match: { end } }] },
      route: { cluster: cluster(canary.version), ...policy },
    });
  routes.push({
    name: `${routing.service.name}/sticky-stable`,
    match: { prefix: '', headers: [{ name, present_match: true }] },
    route: { cluster: cluster(stable.version), ...mirror, ...policy },
  });
  return routes;
}

/** RouteMatch fields for a list of matchers (all must match). */
function matchersFor(match: readonly RouteMatcher[], dialect: Dialect): object {
  const headers: object[] = [];
  const query_parameters: object[] = [];
  for (const m of match) {
    if (m.query !== undefined) {
      // Envoy's query matcher has no inversion; the model rejects `invert` on query matchers.
      query_parameters.push(m.present ? { name: m.query, present_match: true } : { name: m.query, string_match: stringMatch(m) });
    } else if (m.cookie !== undefined) {
      // A regex on the Cookie header works on every Envoy and gRPC client generation.
      headers.push({ ...dialect.headerRegexMatch('cookie', cookieRegex(m.cookie, m)), invert_match: !!m.invert });
    } else {
      const name = m.header!.toLowerCase();
      if (m.present) headers.push({ name, present_match: true, invert_match: !!m.invert });
      else headers.push({ ...dialect.headerValueMatch(name, m), invert_match: !!m.invert });
    }
  }
  return {
    ...(headers.length ? { headers } : {}),
    ...(query_parameters.length ? { query_parameters } : {}),
  };
}

export function stringMatch(m: RouteMatcher): object {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.suffix !== undefined) return { suffix: m.suffix };
  if (m.contains !== undefined) return { contains: m.contains };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  throw new Error('matcher has no value');
}

/**
 * gRPC clients before gRFC A63 (C-core < 1.56, e.g. Debian 12's 1.51) NACK `string_match`;
 * grpc-js accepts it but not the old `contains_match`. Every gRPC generation accepts these
 * older fields, with "contains" written as a regex, so gRPC nodes get them; Envoy, which
 * deprecated them, gets `string_match`.
 */
export function legacyHeaderMatch(m: RouteMatcher): object {
  if (m.exact !== undefined) return { exact_match: m.exact };
  if (m.prefix !== undefined) return { prefix_match: m.prefix };
  if (m.suffix !== undefined) return { suffix_match: m.suffix };
  if (m.contains !== undefined) return { safe_regex_match: { regex: `.*${escape(m.contains)}.*` } };
  if (m.regex !== undefined) return { safe_regex_match: { regex: m.regex } };
  throw new Error('matcher has no value');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** A full-match regex on the Cookie header for one cookie (`a=1; name=value; b=2`). */
export function cookieRegex(name: string, m: RouteMatcher): string {
  const before = '(?:.*;\\s*)?';
  const after = '(?:;.*)?';
  const n = escape(name);
  let value: string;
  if (m.present) return `${before}${n}=.*`;
  if (m.exact !== undefined) value = escape(m.exact);
  else if (m.prefix !== undefined) value = `${escape(m.prefix)}[^;]*`;
  else if (m.suffix !== undefined) value = `[^;]*${escape(m.suffix)}`;
  else if (m.contains !== undefined) value = `[^;]*${escape(m.contains)}[^;]*`;
  else if (m.regex !== undefined) value = `(?:${m.regex})`;
  else throw new Error('matcher has no value');
  return `${before}${n}=${value}${after}`;
}

/** Clusters a service's routes send traffic to, mirrored copies included (a route must never
 *  outlive them on a client). */
export function routedClusters(r: Routing, dialect: Dialect): string[] {
  const cluster = (v: string) => clusterName(r.service.name, v, r.service);
  const names = [...heldVersions(r, dialect), ...r.split.map((s) => s.version), ...r.headerRoutes.map((h) => h.version)].map(cluster);
  if (r.mirror && dialect.mirrorPolicy(cluster(r.mirror.version), r.mirror.percent)) names.push(cluster(r.mirror.version));
  return [...new Set(names)];
}
