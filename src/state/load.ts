// Start-up: the desired state as stored. Never refuses to serve: a value that does not parse,
// does not match its key, or conflicts with what was loaded before it is quarantined (moved
// aside by the store, named in the log and in the status API) and everything else is served.
import type { Logger } from 'pino';
import type { RolloutState } from '../model/rollout.js';
import { RolloutStateSchema } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';
import { NAME, ServiceSchema } from '../model/service.js';
import type { Entry, Store } from '../store/store.js';
import { snapshotOf } from '../store/store.js';
import { NameClaims, checkRollouts } from './config-check.js';
import type { ConfigCheck, DesiredState } from './desired-state.js';
import { DECLARATIONS_KEY, ROLLOUT_PREFIX, SERVICE_PREFIX, STATE_PREFIXES } from './keys.js';

export interface LoadedState {
  state: DesiredState;
  /** The store revision of every loaded key (and of meta/declarations). */
  revisions: Map<string, number>;
  /** The store's revision the state was read at: a watch resumes after it. */
  revision: number;
}

export async function loadState(store: Store, log: Logger, check?: ConfigCheck): Promise<LoadedState> {
  const quarantine = async (key: string, reason: string, revision: number) => {
    log.error({ key, reason }, 'stored value quarantined: it cannot be served');
    try {
      await store.quarantine(key, reason, revision);
    } catch (err) {
      log.error({ err, key }, 'could not move the quarantined value aside; it is ignored');
    }
  };
  // Filled in place, in key order, each value checked against those accepted before it: one
  // pass over the store (a copy of the state and a whole-configuration check per value made
  // start-up quadratic: 77 s at 10,000 services).
  const services = new Map<string, NamedService>();
  const rollouts = new Map<string, RolloutState>();
  const loading: DesiredState = { revision: 1, services, rollouts };
  const claims = new NameClaims();
  const revisions = new Map<string, number>();
  const snapshot = await snapshotOf(store, STATE_PREFIXES);
  const under = (prefix: string): Entry[] => snapshot.entries.filter((e) => e.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : 1));
  const declarations = snapshot.entries.find((e) => e.key === DECLARATIONS_KEY);
  if (declarations) revisions.set(DECLARATIONS_KEY, declarations.revision);

  for (const { key, value, revision } of under(SERVICE_PREFIX)) {
    const name = key.slice(SERVICE_PREFIX.length);
    const service = parseService(name, value);
    if (typeof service === 'string') {
      await quarantine(key, service, revision);
      continue;
    }
    services.set(name, service);
    // Names are claimed last: a service refused for another reason claims nothing.
    const problems = check?.(loading, [name]) ?? [];
    if (problems.length === 0) problems.push(...claims.claim(service));
    if (problems.length > 0) {
      services.delete(name);
      await quarantine(key, problems.map((p) => p.message).join('; '), revision);
    } else revisions.set(key, revision);
  }

  for (const { key, value, revision } of under(ROLLOUT_PREFIX)) {
    const name = key.slice(ROLLOUT_PREFIX.length);
    const rollout = parseRollout(name, value);
    if (typeof rollout === 'string') {
      await quarantine(key, rollout, revision);
      continue;
    }
    if (!services.has(name)) {
      await quarantine(key, `service "${name}" is not declared`, revision);
      continue;
    }
    // A rollout changes no cluster or domain: only its own rules and translation are checked.
    rollouts.set(name, rollout);
    const problems = [...checkRollouts(loading, [name]), ...(check?.(loading, [name]) ?? [])];
    if (problems.length > 0) {
      rollouts.delete(name);
      await quarantine(key, problems.map((p) => p.message).join('; '), revision);
    } else revisions.set(key, revision);
  }
  return { state: loading, revisions, revision: snapshot.revision };
}

/** The service stored under `name`, or why it cannot be used. */
export function parseService(name: string, value: unknown): NamedService | string {
  if (!NAME.test(name)) return `"${name}" is not a valid service name`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const { name: stored, ...spec } = value as Record<string, unknown>;
  if (stored !== name) return `holds service "${String(stored)}", not "${name}"`;
  const parsed = ServiceSchema.safeParse(spec);
  if (!parsed.success) return `not a valid service: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')}`;
  return { name, ...parsed.data };
}

/** The rollout stored under `name`, or why it cannot be used. */
export function parseRollout(name: string, value: unknown): RolloutState | string {
  const parsed = RolloutStateSchema.safeParse(value);
  if (!parsed.success) return `not a rollout: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')}`;
  const rollout = value as RolloutState; // the parse checked it; the stored object keeps every field
  if (rollout.service !== name) return `holds the rollout of "${rollout.service}", not of "${name}"`;
  return rollout;
}
