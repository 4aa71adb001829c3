// What translate needs to know about one service: its spec and how traffic is split now.
import type { NamedService } from '../model/service.js';

/** One request matcher of a header route (the rollout model's Matcher has this shape). */
export interface RouteMatcher {
  header?: string;
  cookie?: string;
  query?: string;
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  regex?: string;
  present?: true;
  invert?: boolean;
}

/** Envoy picks the weighted cluster by a hash of this header or cookie (Envoy 1.36+ only). */
export type HashSticky = { header: string } | { cookie: string };
/** The caller sends a bucket in [0, buckets) in this header: buckets below the canary's share go
 *  to the canary, any other value to stable (every client kind; docs/sticky.md). */
export type BucketSticky = { bucketHeader: string; buckets: number };
export type Sticky = HashSticky | BucketSticky;

export interface Routing {
  service: NamedService;
  /** Versions receiving traffic, canary first, weights > 0 summing to 100. */
  split: readonly { version: string; weight: number }[];
  /** Requests matching every matcher of a route go to its version (first match wins). */
  headerRoutes: readonly { name: string; match: readonly RouteMatcher[]; version: string }[];
  /** Keep a user on one version while weights move (for the kinds of client that can). */
  sticky?: Sticky;
  /** Copy this share (0 < percent <= 100) of the requests the weighted split and the stable
   *  routes carry to a version, discarding its answers (for the kinds of client that can). */
  mirror?: { version: string; percent: number };
  /** Versions that take no traffic but that clients should keep (a rolled-back canary, one whose
   *  first weight is still to come, the stable version while the canary takes 100%): listed at
   *  weight 0 for the kinds that subscribe to clusters by name (Dialect.holdsIdleVersions), so
   *  that a rollback and the next weight step re-subscribe nothing. Never a version of `split`. */
  held?: readonly string[];
}

/** 100% to the stable version: a service without an active rollout. */
export function stableRouting(service: NamedService): Routing {
  return { service, split: [{ version: service.stable, weight: 100 }], headerRoutes: [] };
}
