// The desired state: every declared service and its rollout, as one immutable snapshot. Each
// accepted change makes a new snapshot with a higher revision; the reconciler publishes them.
import type { RolloutState } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';

export interface DesiredState {
  /** Increases with every accepted change (in this process). */
  readonly revision: number;
  readonly services: ReadonlyMap<string, NamedService>;
  readonly rollouts: ReadonlyMap<string, RolloutState>;
}

export const EMPTY_STATE: DesiredState = { revision: 0, services: new Map(), rollouts: new Map() };

/** One service's entries replaced (`null` removes), everything else shared with `state`. */
export function withService(
  state: DesiredState,
  name: string,
  change: { service?: NamedService | null; rollout?: RolloutState | null },
): DesiredState {
  // Snapshots never change: a map this change leaves as it is is shared, not copied (a rollback
  // changes the rollout only; with 10,000 services every copy costs).
  const same = <T>(map: ReadonlyMap<string, T>, value: T | null) => (value === null ? !map.has(name) : map.get(name) === value);
  let services = state.services;
  let rollouts = state.rollouts;
  if (change.service !== undefined && !same(services, change.service)) {
    const next = new Map(services);
    if (change.service === null) next.delete(name);
    else next.set(name, change.service);
    services = next;
  }
  if (change.rollout !== undefined && !same(rollouts, change.rollout)) {
    const next = new Map(rollouts);
    if (change.rollout === null) next.delete(name);
    else next.set(name, change.rollout);
    rollouts = next;
  }
  return { revision: state.revision + 1, services, rollouts };
}

/** A problem that makes a configuration unpublishable, with the field at fault. */
export interface ConfigProblem {
  service: string;
  field: string;
  message: string;
}

/** Checks a candidate configuration for the services that changed (translation, cache rules). */
export type ConfigCheck = (candidate: DesiredState, changed: readonly string[]) => ConfigProblem[];
