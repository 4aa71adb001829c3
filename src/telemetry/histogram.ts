// Latency histograms as Envoy reports them: bucket upper bounds in milliseconds. Kept as
// non-cumulative counts per upper bound so that histograms from many nodes (even with
// different bucket layouts) and many report intervals merge by plain addition.

/** Observations per bucket, keyed by the bucket's inclusive upper bound (Infinity = overflow). */
export type Buckets = Map<number, number>;

/** Adds `more` into `into`. */
export function mergeBuckets(into: Buckets, more: ReadonlyMap<number, number>): void {
  for (const [bound, n] of more) if (n > 0) into.set(bound, (into.get(bound) ?? 0) + n);
}

export function totalCount(b: ReadonlyMap<number, number>): number {
  let n = 0;
  for (const v of b.values()) n += v;
  return n;
}

/**
 * The q-quantile (0..1), interpolated linearly inside the bucket it falls in, as Prometheus'
 * histogram_quantile does: the lower edge of the first bucket is 0, and a quantile that falls
 * in the overflow bucket is reported as the highest finite bound (all we know is "above it").
 * Null without observations.
 */
export function quantile(b: ReadonlyMap<number, number>, q: number): number | null {
  const total = totalCount(b);
  if (total === 0) return null;
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const rank = q * total;
  let below = 0;
  let lower = 0;
  for (const bound of bounds) {
    const n = b.get(bound)!;
    if (n > 0 && below + n >= rank) {
      if (bound === Infinity) return lower;
      return lower + (bound - lower) * ((rank - below) / n);
    }
    below += n;
    if (bound !== Infinity) lower = bound;
  }
  return lower;
}
