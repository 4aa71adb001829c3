// Percentiles and the human table.

export interface Dist {
  n: number;
  missing: number;
  p50: number;
  p99: number;
  max: number;
}

export function dist(values: ArrayLike<number>): Dist {
  const ok: number[] = [];
  let missing = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) ok.push(v);
    else missing++;
  }
  ok.sort((a, b) => a - b);
  const q = (p: number) => (ok.length === 0 ? NaN : ok[Math.min(ok.length - 1, Math.max(0, Math.ceil(p * ok.length) - 1))]!);
  return { n: ok.length, missing, p50: round(q(0.5)), p99: round(q(0.99)), max: round(q(1)) };
}

/** The median (by max) of several repetitions' distributions. */
export function medianRun(runs: Dist[]): Dist {
  const sorted = [...runs].sort((a, b) => a.max - b.max);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function ratio(a: number, b: number): number {
  return b > 0 ? round(a / b, 2) : NaN;
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isNaN(c) ? '–' : String(c)) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c).padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
