// Rules that hold across services: a name a client sees belongs to one service and version.
// Clusters (and their endpoint assignments) share one namespace on every node; Envoy rejects
// two virtual hosts with one domain. Checked against the whole candidate configuration, so a
// declaration can never make another service's resources unpublishable.
import { isActive } from '../rollout/machine.js';
import type { NamedService } from '../model/service.js';
import { clustersOf, domainsOf, hasVersion } from '../model/service.js';
import type { ConfigProblem, DesiredState } from './desired-state.js';

/** Problems the candidate has for the `changed` services (each named with its owner). */
export function checkNames(candidate: DesiredState, changed: readonly string[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const clusters = new Map<string, { service: string; version: string }>();
  const domains = new Map<string, string>();
  const mine = new Set(changed);
  // Unchanged services claim first, so the error names the change, never the innocent.
  const order = [...candidate.services.values()].sort((a, b) => Number(mine.has(a.name)) - Number(mine.has(b.name)) || (a.name < b.name ? -1 : 1));
  for (const service of order) {
    for (const { cluster, version } of clustersOf(service)) {
      const owner = clusters.get(cluster);
      if (owner && mine.has(service.name))
        problems.push({
          service: service.name,
          field: `versions.${version}.cluster`,
          message: `cluster "${cluster}" of version "${version}" is already used by service "${owner.service}" version "${owner.version}"`,
        });
      else if (!owner) clusters.set(cluster, { service: service.name, version });
    }
    for (const d of domainsOf(service)) {
      const key = d.toLowerCase();
      const owner = domains.get(key);
      if (owner !== undefined && owner !== service.name && mine.has(service.name))
        problems.push({ service: service.name, field: 'domains', message: `domain "${d}" is already used by service "${owner}"` });
      else if (owner === undefined) domains.set(key, service.name);
    }
  }
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
