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
