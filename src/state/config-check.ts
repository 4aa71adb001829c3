// Rules that hold across services: a name a client sees belongs to one service and version.
// Clusters (and their endpoint assignments) share one namespace on every node; Envoy rejects
// two virtual hosts with one domain. Checked against the whole candidate configuration, so a
// declaration can never make another service's resources unpublishable.
import { isActive } from '../rollout/machine.js';
import type { NamedService } from '../model/service.js';
import { clustersOf, domainsOf, hasVersion } from '../model/service.js';
import type { ConfigProblem, DesiredState } from './desired-state.js';

/**
 * Problems the candidate has for the `changed` services (each named with its owner). Work in the
 * number of services, with no sort and no index of every name: only the names the changed
 * services claim are looked up (a check at 10,000 services is on the path of every change).
 */
export function checkNames(candidate: DesiredState, changed: readonly string[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const mine = new Set(changed);
  const byName = (a: NamedService, b: NamedService) => (a.name < b.name ? -1 : 1);
  const changedServices = [...mine].flatMap((n) => candidate.services.get(n) ?? []).sort(byName);
  if (changedServices.length === 0) return problems;
  const wantedClusters = new Set(changedServices.flatMap((s) => clustersOf(s).map((c) => c.cluster)));
  const wantedDomains = new Set(changedServices.flatMap((s) => domainsOf(s).map((d) => d.toLowerCase())));
  // Unchanged services claim first (the first by name, as if they went in name order), so the
  // error names the change, never the innocent.
  const claims = new NameClaims();
  const { clusters, domains } = claims;
  for (const service of candidate.services.values()) {
    if (mine.has(service.name)) continue;
    for (const { cluster, version } of clustersOf(service)) {
      if (!wantedClusters.has(cluster)) continue;
      const owner = clusters.get(cluster);
      if (!owner || owner.service > service.name) clusters.set(cluster, { service: service.name, version });
    }
    for (const d of domainsOf(service)) {
      const key = d.toLowerCase();
      if (!wantedDomains.has(key)) continue;
      const owner = domains.get(key);
      if (owner === undefined || owner > service.name) domains.set(key, service.name);
    }
  }
  for (const service of changedServices) problems.push(...claims.claim(service, { evenIfConflicting: true }));
  return problems;
}

/** An active rollout needs its service, its stable version as the service's stable, and its canary. */
export function checkRollouts(candidate: DesiredState, changed: readonly string[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const name of changed) {
    const r = candidate.rollouts.get(name);
    if (!r || !isActive(r)) continue;
    const service: NamedService | undefined = candidate.services.get(name);
    if (!service) {
      problems.push({ service: name, field: 'service', message: `service "${name}" has an active rollout; roll it back or promote it first` });
      continue;
    }
    for (const v of [r.stable, r.canary])
      if (!hasVersion(service, v))
        problems.push({ service: name, field: `versions.${v}`, message: `version "${v}" is in an active rollout and cannot be removed` });
    if (service.stable !== r.stable)
      problems.push({ service: name, field: 'stable', message: `stable is "${r.stable}" while a rollout runs; promote or roll back instead` });
  }
  return problems;
}

/** Who claimed each cluster and domain, built one service at a time: start-up checks every
 *  stored service in one pass instead of one whole-configuration check per service. */
export class NameClaims {
  readonly clusters = new Map<string, { service: string; version: string }>();
  readonly domains = new Map<string, string>();

  /** The service's conflicts with what is claimed (and between its own versions). Its free names
   *  are claimed when it has no conflict, or always with `evenIfConflicting`. */
  claim(service: NamedService, opts: { evenIfConflicting?: boolean } = {}): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const clusters = new Map<string, { service: string; version: string }>();
    for (const { cluster, version } of clustersOf(service)) {
      const owner = this.clusters.get(cluster) ?? clusters.get(cluster);
      if (owner)
        problems.push({
          service: service.name,
          field: `versions.${version}.cluster`,
          message: `cluster "${cluster}" of version "${version}" is already used by service "${owner.service}" version "${owner.version}"`,
        });
      else clusters.set(cluster, { service: service.name, version });
    }
    const domains = new Set<string>();
    for (const d of domainsOf(service)) {
      const key = d.toLowerCase();
      const owner = this.domains.get(key);
      if (owner !== undefined && owner !== service.name) problems.push({ service: service.name, field: 'domains', message: `domain "${d}" is already used by service "${owner}"` });
      else if (owner === undefined) domains.add(key);
    }
    if (problems.length === 0 || opts.evenIfConflicting) {
      for (const [cluster, owner] of clusters) this.clusters.set(cluster, owner);
      for (const key of domains) this.domains.set(key, service.name);
    }
    return problems;
  }
}
