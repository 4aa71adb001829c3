// How a service's traffic is split right now: its rollout's weights, cohorts and mirror share
// while one is active, otherwise everything to the stable version. A canary without traffic
// (rolled back, or before its first weight) is held: clients that subscribe to clusters by name
// keep it, so a rollback and the next weight step re-subscribe nothing.
import type { RolloutState } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';
import { hasVersion } from '../model/service.js';
import { isActive, mirrorOf } from '../rollout/machine.js';
import type { Routing } from '../translate/routing.js';
import { stableRouting } from '../translate/routing.js';

export function routingOf(service: NamedService, rollout: RolloutState | undefined): Routing {
  if (!rollout || !isActive(rollout)) return withHeld(stableRouting(service), rollout);
  const split = [
    { version: rollout.canary, weight: rollout.canaryWeight },
    { version: rollout.stable, weight: 100 - rollout.canaryWeight },
  ].filter((s) => s.weight > 0);
  return withHeld({
    service,
    split,
    headerRoutes: rollout.headerRoutesActive
      ? (rollout.spec.headerRoutes ?? []).map((h) => ({ name: h.name, match: h.match, version: rollout.canary }))
      : [],
    ...(rollout.spec.sticky ? { sticky: rollout.spec.sticky } : {}),
    // A canary that already takes every request has nothing to be copied to it.
    ...(mirrorOf(rollout) > 0 && rollout.canaryWeight < 100 ? { mirror: { version: rollout.canary, percent: mirrorOf(rollout) } } : {}),
  }, rollout);
}

/** Holds the rollout's versions that take no traffic: the canary once rolled back or before its
 *  first weight, the stable version while the canary takes everything (a rollback from there
 *  needs it again). A promoted rollout holds nothing; a version no longer declared is not held. */
function withHeld(routing: Routing, rollout: RolloutState | undefined): Routing {
  if (!rollout || rollout.phase === 'Promoted') return routing;
  const candidates = isActive(rollout) ? [rollout.canary, rollout.stable] : [rollout.canary];
  const held = candidates.filter((v) => hasVersion(routing.service, v) && !routing.split.some((s) => s.version === v));
  return held.length > 0 ? { ...routing, held } : routing;
}
