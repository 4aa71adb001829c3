// Virtual hosts and routes: header cohorts first (first match wins), then the weighted route
// with the canary listed first, so raising its weight keeps everyone already on it.
import { parseDuration } from '../model/duration.js';
import { clusterName, domainsOf, GRPC_RETRY_ON } from '../model/service.js';
import type { NamedService } from '../model/service.js';
import type { Flavour, RouteMatcher, Routing } from './routing.js';

export function virtualHost(routing: Routing, flavour: Flavour): object {
  const { service } = routing;
  const cluster = (version: string) => clusterName(service.name, version, service);
  const policy = routePolicy(service, flavour);
  const routes: object[] = routing.headerRoutes.map((hr) => ({
    name: `${service.name}/${hr.name}`,
    match: { prefix: '', ...matchersFor(hr.match, flavour) },
    route: { cluster: cluster(hr.version), ...policy },
  }));
  routes.push({ name: `${service.name}/default`, match: { prefix: '' }, route: { ...splitAction(routing, flavour, cluster), ...policy } });
  return { name: service.name, domains: domainsOf(service), routes };
}

const duration = (text: string) => {
  const ms = parseDuration(text);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
};

/** Timeout and retries of a service, in the fields each kind of client reads. */
function routePolicy(service: NamedService, flavour: Flavour): object {
  const out: Record<string, unknown> = {};
  if (service.timeout) {
    // gRPC clients ignore the route timeout and read max_stream_duration (gRFC A31).
    if (flavour === 'envoy') out.timeout = duration(service.timeout);
    else out.max_stream_duration = { max_stream_duration: duration(service.timeout) };
  }
  const r = service.retries;
  if (r) {
    const on = flavour === 'envoy' ? r.on : r.on.filter((c) => GRPC_RETRY_ON.includes(c));
    if (on.length > 0)
      out.retry_policy = {
        retry_on: on.join(','),
        num_retries: { value: r.attempts - 1 },
        ...(flavour === 'envoy' && r.perTryTimeout ? { per_try_timeout: duration(r.perTryTimeout) } : {}),
      };
  }
  return out;
}

function splitAction(routing: Routing, flavour: Flavour, cluster: (v: string) => string): object {
  // One version: a plain cluster route (how a rollback looks: no weighted entry at all).
  if (routing.split.length === 1) return { cluster: cluster(routing.split[0]!.version) };
  const action: Record<string, unknown> = {
    weighted_clusters: {
      clusters: routing.split.map((s) => ({ name: cluster(s.version), weight: { value: s.weight } })),
    },
  };
  // Proxyless gRPC ignores hash-based picking of weighted clusters; it is sent to Envoy only.
  if (routing.sticky && flavour === 'envoy') {
    (action.weighted_clusters as Record<string, unknown>).use_hash_policy = { value: true };
    action.hash_policy = [
      'header' in routing.sticky
        ? { header: { header_name: routing.sticky.header } }
        : { cookie: { name: routing.sticky.cookie } },
    ];
  }
  return action;
}

/** RouteMatch fields for a list of matchers (all must match). */
function matchersFor(match: readonly RouteMatcher[], flavour: Flavour): object {
  const headers: object[] = [];
  const query_parameters: object[] = [];
  for (const m of match) {
    if (m.query !== undefined) {
      // Envoy's query matcher has no inversion; the model rejects `invert` on query matchers.
      query_parameters.push(m.present ? { name: m.query, present_match: true } : { name: m.query, string_match: stringMatch(m) });
    } else if (m.cookie !== undefined) {
      // A regex on the Cookie header works on every Envoy and gRPC client generation.
      const regex = { regex: cookieRegex(m.cookie, m) };
      headers.push({
        name: 'cookie',
        ...(flavour === 'envoy' ? { string_match: { safe_regex: regex } } : { safe_regex_match: regex }),
        invert_match: !!m.invert,
      });
    } else {
      const base = { name: m.header!.toLowerCase(), invert_match: !!m.invert };
      if (m.present) headers.push({ ...base, present_match: true });
      else if (flavour === 'envoy') headers.push({ ...base, string_match: stringMatch(m) });
      else headers.push({ ...base, ...legacyHeaderMatch(m) });
    }
  }
  return {
    ...(headers.length ? { headers } : {}),
    ...(query_parameters.length ? { query_parameters } : {}),
  };
}

function stringMatch(m: RouteMatcher): object {
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
function legacyHeaderMatch(m: RouteMatcher): object {
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
