// Durations as users write them in rollout specs ("30s", "5m", "1h30m", "250ms").
// Deliberately narrow (whole numbers, units largest first, each at most once) so that a
// duration reads one way only; "1.5h" or "90m30m" are rejected rather than guessed at.
import { z } from 'zod';

const PATTERN = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNIT_MS = [3_600_000, 60_000, 1_000, 1] as const;

/** Milliseconds in `text`; throws an Error whose message says what is accepted. */
export function parseDuration(text: string): number {
  const m = PATTERN.exec(text);
  if (text === '' || m === null) {
    throw new Error(`invalid duration "${text}": expected whole numbers with units h, m, s, ms (largest first), e.g. "30s", "5m", "1h30m", "250ms"`);
  }
  const ms = UNIT_MS.reduce((sum, unit, i) => sum + Number(m[i + 1] ?? 0) * unit, 0);
  if (!Number.isSafeInteger(ms)) throw new Error(`invalid duration "${text}": too long`);
  return ms;
}

/** A duration string above 0 and at most `max` (itself a duration); kept as written so stored specs read back as sent. */
export function durationString(max: string) {
  const maxMs = parseDuration(max);
  return z.string().superRefine((text, ctx) => {
    try {
      const ms = parseDuration(text);
      if (ms <= 0 || ms > maxMs) ctx.addIssue({ code: 'custom', message: `duration "${text}" must be more than 0 and at most ${max}` });
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
}
