// Where the desired state lives in the store: one key per service declaration, one per
// current rollout, and a bounded archive of finished rollouts per service.
import type { RolloutState } from '../model/rollout.js';

export const SERVICE_PREFIX = 'services/';
export const ROLLOUT_PREFIX = 'rollouts/';
export const ARCHIVE_PREFIX = 'archive/';
/** Finished rollouts kept per service. */
export const MAX_ARCHIVED = 20;

/** Archive keys sort by creation time (then id), so the newest are the last. */
export function archiveKey(r: RolloutState): string {
  return `${ARCHIVE_PREFIX}${r.service}/${String(Date.parse(r.createdAt)).padStart(15, '0')}-${r.id}`;
}

/** Bookkeeping shared by replicas (`meta/declarations`). */
export const META_PREFIX = 'meta/';
/**
 * Written by every service declaration and expected at the revision its checks saw: the
 * cross-service checks (cluster names, domains) of one replica cannot race a declaration on
 * another, since two declarations checked against the same revision cannot both commit.
 */
export const DECLARATIONS_KEY = `${META_PREFIX}declarations`;
/** What the desired state is read and watched from. */
export const STATE_PREFIXES = [SERVICE_PREFIX, ROLLOUT_PREFIX, META_PREFIX] as const;

export const serviceKey = (name: string) => SERVICE_PREFIX + name;
export const rolloutKey = (name: string) => ROLLOUT_PREFIX + name;

/** The service a state key belongs to, and which of its entries it holds. */
export function entryOfKey(key: string): { kind: 'service' | 'rollout'; name: string } | undefined {
  for (const [prefix, kind] of [[SERVICE_PREFIX, 'service'], [ROLLOUT_PREFIX, 'rollout']] as const)
    if (key.startsWith(prefix) && !key.includes('/', prefix.length)) return { kind, name: key.slice(prefix.length) };
  return undefined;
}
