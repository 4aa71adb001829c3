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
  const services = new Map(state.services);
  const rollouts = new Map(state.rollouts);
  if (change.service === null) services.delete(name);
  else if (change.service) services.set(name, change.service);
  if (change.rollout === null) rollouts.delete(name);
  else if (change.rollout) rollouts.set(name, change.rollout);
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
