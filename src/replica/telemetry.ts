// Telemetry across replicas. Nodes send load reports to the replica they are connected to, so
// the leader's analysis needs the others' numbers: each replica exports, in its summary, the
// traffic of the clusters under analysis (canary and stable of every rollout with analysis) in
// one-second slots covering the longest analysis window, and the leader adds them to its own
// windows. A slot counts for a window when it starts inside it, so consecutive windows still
// partition the data. Before measuring a window, the leader waits (bounded) until every other
// replica has exported the slots up to the window's close.
import { WindowedStats } from '../telemetry/window.js';
import type { LoadDelta, WindowStats } from '../telemetry/window.js';
import { mergeBuckets } from '../telemetry/histogram.js';

export const SLOT_MS = 1000;
/** The longest analysis interval (16 minutes of telemetry are kept) bounds what is exported. */
const MAX_HORIZON_MS = 16 * 60_000;

/** [slot index, successful, errors, nodes, latency buckets as [upper bound, count][]] */
export type SlotRow = [number, number, number, number, [number, number][]?];

export interface TelemetryExport {
  slotMs: number;
  /** Every slot that starts before this time is complete (ms since the epoch). */
  until: number;
  /** Per cluster, the non-empty slots. */
  clusters: Record<string, SlotRow[]>;
}

/** A cluster to export, and how far back (the longest analysis window that reads it). */
export interface ExportedCluster {
  cluster: string;
  horizonMs: number;
}

/** Keeps the complete one-second slots of the wanted clusters, computing each one once. */
export class TelemetryExporter {
  /** Per cluster: slots [from, until) are computed; the non-empty ones by index. */
  private readonly held = new Map<string, { from: number; until: number; rows: Map<number, SlotRow> }>();

  constructor(
    private readonly local: WindowedStats,
    private readonly now: () => number = Date.now,
  ) {}

  export(wanted: readonly ExportedCluster[]): TelemetryExport | undefined {
    if (wanted.length === 0) {
      this.held.clear();
      return undefined;
    }
    const untilIndex = Math.floor(this.now() / SLOT_MS);
    const clusters: Record<string, SlotRow[]> = {};
    const keep = new Set<string>();
    for (const { cluster, horizonMs } of wanted) {
      keep.add(cluster);
      const fromIndex = untilIndex - Math.ceil(Math.min(horizonMs, MAX_HORIZON_MS) / SLOT_MS);
      let h = this.held.get(cluster);
      if (!h) this.held.set(cluster, (h = { from: fromIndex, until: fromIndex, rows: new Map() }));
      // Slots past the horizon go; those it newly covers (earlier, or complete since) are computed.
      for (const i of h.rows.keys()) if (i < fromIndex) h.rows.delete(i);
      for (let i = fromIndex; i < Math.min(h.from, untilIndex); i++) this.slot(cluster, i, h.rows);
      for (let i = Math.max(h.until, fromIndex); i < untilIndex; i++) this.slot(cluster, i, h.rows);
      h.from = fromIndex;
      h.until = Math.max(h.until, untilIndex);
      if (h.rows.size) clusters[cluster] = [...h.rows.values()].sort((a, b) => a[0] - b[0]);
    }
    for (const c of this.held.keys()) if (!keep.has(c)) this.held.delete(c);
    return { slotMs: SLOT_MS, until: untilIndex * SLOT_MS, clusters };
  }

  private slot(cluster: string, index: number, into: Map<number, SlotRow>): void {
    const s = this.local.query(cluster, index * SLOT_MS, (index + 1) * SLOT_MS);
    if (s.requests === 0 && s.latency.size === 0) return;
    const row: SlotRow = [index, s.successful, s.errors, s.nodes];
    if (s.latency.size) row.push([...s.latency.entries()].map(([b, n]) => [b === Infinity ? -1 : b, n]));
    into.set(index, row);
  }
}

/** This replica's windows plus what the other replicas exported: what the leader analyses. */
export class ReplicaWindows extends WindowedStats {
  constructor(
    private readonly local: WindowedStats,
    private readonly remote: () => readonly (TelemetryExport | undefined)[],
  ) {
    super({ maxClusters: 1 });
  }

  override add(cluster: string, node: string, delta: LoadDelta): boolean {
    return this.local.add(cluster, node, delta);
  }

  override query(cluster: string, fromMs: number, toMs: number): WindowStats {
    const out = this.local.query(cluster, fromMs, toMs);
    for (const exp of this.remote()) {
      const rows = exp?.clusters[cluster];
      if (!rows) continue;
      const from = Math.floor(fromMs / exp.slotMs);
      const to = Math.floor(toMs / exp.slotMs);
      let nodes = 0;
      for (const [index, successful, errors, n, latency] of rows) {
        if (index < from || index >= to) continue;
        out.successful += successful;
        out.errors += errors;
        if (latency) mergeBuckets(out.latency, new Map(latency.map(([b, c]) => [b === -1 ? Infinity : b, c])));
        nodes = Math.max(nodes, n);
      }
      // Distinct nodes per replica are not exported per window: the busiest slot's count.
      out.nodes += nodes;
    }
    out.requests = out.successful + out.errors;
    return out;
  }

  override clusters(): string[] {
    const names = new Set(this.local.clusters());
    for (const exp of this.remote()) for (const c of Object.keys(exp?.clusters ?? {})) names.add(c);
    return [...names].sort();
  }
}
