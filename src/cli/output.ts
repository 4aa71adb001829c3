// Output: human tables by default, JSON or YAML (the server's objects, unchanged) for scripts.
import jsYaml from 'js-yaml';

export const FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

export function isMachine(format: Format): format is 'json' | 'yaml' {
  return format === 'json' || format === 'yaml';
}

/** Machine output of one value: pretty JSON, or one YAML document. */
export function serialize(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) + '\n' : jsYaml.dump(value, { noRefs: true, lineWidth: -1 });
}

const ANSI = /\x1b\[[0-9;]*m/g;
const visibleLength = (s: string) => [...s.replace(ANSI, '')].length;

/** Columns padded to the widest cell, kubectl style (no borders, two spaces between). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleLength(c))))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function painter(stream: NodeJS.WriteStream = process.stdout): (code: number, s: string) => string {
  const on = !!stream.isTTY && !process.env.NO_COLOR;
  return (code, s) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
}

/** "3m12s" from milliseconds (for countdowns and ages). */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}

/** Age of an ISO time relative to now ("5m"), or "-". */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '-' : humanDuration(now - t);
}

export function weightsText(weights: Record<string, number>): string {
  return Object.entries(weights)
    .map(([v, w]) => `${v} ${w}%`)
    .join(', ');
}
