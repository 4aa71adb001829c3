// What the benchmark serves: N services with a stable and a canary version each, the same for
// Sluice (declared over REST) and for the floor server (translated once at start-up).
import type { Service } from '../src/model/service.js';

export const SERVICE_PREFIX = 'svc-';
/** The service every node of the fan-out scenarios calls, and whose rollout is rolled back. */
export const ROLLBACK_SERVICE = `${SERVICE_PREFIX}0`;
export const CANARY_WEIGHT = 10;
/** The weight the weight-step scenario promotes to (from CANARY_WEIGHT). */
export const STEP_WEIGHT = 20;

export function serviceName(i: number): string {
  return `${SERVICE_PREFIX}${i}`;
}

/** Two versions (v1 stable, v2 canary) with three endpoints each. */
export function serviceSpec(i: number): Service {
  const endpoints = (v: number) =>
    [1, 2, 3].map((k) => ({ address: `10.${v}.${Math.floor(i / 250)}.${(i % 250) + k}`, port: 8080 }));
  return { versions: { v1: { endpoints: endpoints(1) }, v2: { endpoints: endpoints(2) } }, stable: 'v1' };
}

/** The rollout the rollback and weight-step scenarios start (and then roll back): a weight, a
 *  pause, the next weight (reached by `promote`), a pause. */
export function rolloutSpec(service: string) {
  return { service, canary: 'v2', steps: [{ setWeight: CANARY_WEIGHT }, { pause: {} }, { setWeight: STEP_WEIGHT }, { pause: {} }] };
}
