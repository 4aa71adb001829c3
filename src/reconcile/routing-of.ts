// How a service's traffic is split right now: its rollout's weights, cohorts and mirror share
// while one is active, otherwise everything to the stable version.
import type { RolloutState } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';
import { isActive, mirrorOf } from '../rollout/machine.js';
import type { Routing } from '../translate/routing.js';
import { stableRouting } from '../translate/routing.js';

export function routingOf(service: NamedService, rollout: RolloutState | undefined): Routing {
  if (!rollout || !isActive(rollout)) return stableRouting(service);
  const split = [
    { version: rollout.canary, weight: rollout.canaryWeight },
    { version: rollout.stable, weight: 100 - rollout.canaryWeight },
  ].filter((s) => s.weight > 0);
  return {
    service,
    split,
    headerRoutes: rollout.headerRoutesActive
      ? (rollout.spec.headerRoutes ?? []).map((h) => ({ name: h.name, match: h.match, version: rollout.canary }))
      : [],
    ...(rollout.spec.sticky ? { sticky: rollout.spec.sticky } : {}),
    // A canary that already takes every request has nothing to be copied to it.
    ...(mirrorOf(rollout) > 0 && rollout.canaryWeight < 100 ? { mirror: { version: rollout.canary, percent: mirrorOf(rollout) } } : {}),
  };
}
