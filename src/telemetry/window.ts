// Per-cluster request counts and latency over time, merged across the fleet, so that analysis
// can ask "what did the canary's cluster do between t1 and t2". Reports (a node's load report,
// an Envoy's metrics flush) are attributed to the time they arrive and summed into fixed time
// slots; memory is bounded by retention / resolution per cluster, not by the number of nodes.
import type { Buckets } from './histogram.js';
import { mergeBuckets } from './histogram.js';

/** What one node saw for one cluster since its previous report. */
export interface LoadDelta {
  successful: number;
  errors: number;
  /** Latency observations (Envoy only: proxyless gRPC load reports carry none). */
  latency?: ReadonlyMap<number, number>;
}

/** A cluster's traffic over a window, summed over every node that reported. */
export interface WindowStats {
  /** Finished requests: successful + errors. */
  requests: number;
  successful: number;
  errors: number;
  latency: Buckets;
  /** Distinct nodes that reported traffic for the cluster in the window. */
  nodes: number;
}

interface Slot {
  index: number;
  successful: number;
  errors: number;
  latency: Buckets | null;
  nodes: Set<string>;
}

export interface WindowOptions {
  /** Time granularity of windows (default 250 ms). */
  resolutionMs?: number;
  /** How far back windows may reach (default 16 minutes: the longest analysis interval, plus slack). */
  retentionMs?: number;
  /** Clusters held at most (default 10,000); reports for more are refused until some age out. */
  maxClusters?: number;
  now?: () => number;
}

/** How often clusters that stopped reporting are looked for. */
const SWEEP_EVERY_MS = 60_000;

export class WindowedStats {
  private readonly slots = new Map<string, Slot[]>();
  private readonly resolutionMs: number;
  private readonly retentionMs: number;
  private readonly maxClusters: number;
  private readonly now: () => number;
  private sweptAt = 0;

  constructor(opts: WindowOptions = {}) {
    this.resolutionMs = opts.resolutionMs ?? 250;
    this.retentionMs = opts.retentionMs ?? 16 * 60_000;
    this.maxClusters = opts.maxClusters ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Adds a report; false when refused because the windows hold maxClusters other clusters. */
  add(cluster: string, node: string, delta: LoadDelta): boolean {
    if (delta.successful <= 0 && delta.errors <= 0 && !delta.latency?.size) return true;
    const now = this.now();
    const index = Math.floor(now / this.resolutionMs);
    this.sweep(now);
    let list = this.slots.get(cluster);
    if (!list) {
      if (this.slots.size >= this.maxClusters) {
        this.sweep(now, true);
        if (this.slots.size >= this.maxClusters) return false;
      }
      this.slots.set(cluster, (list = []));
    }
    // Slots are in time order; a report lands in the newest one unless the clock stepped back.
    let slot: Slot | undefined;
    for (let i = list.length - 1; i >= 0 && list[i]!.index >= index; i--) if (list[i]!.index === index) slot = list[i];
    if (!slot) {
      slot = { index, successful: 0, errors: 0, latency: null, nodes: new Set() };
      list.push(slot);
      if (list.length > 1 && list[list.length - 2]!.index > index) list.sort((a, b) => a.index - b.index);
    }
    slot.successful += Math.max(0, delta.successful);
    slot.errors += Math.max(0, delta.errors);
    if (delta.latency?.size) mergeBuckets((slot.latency ??= new Map()), delta.latency);
    slot.nodes.add(node);
    dropBefore(list, this.oldestIndex(now));
    return true;
  }

  private oldestIndex(now: number): number {
    return Math.floor((now - this.retentionMs) / this.resolutionMs);
  }

  /** Drops clusters whose every slot is past the retention (they stopped reporting: deleted
   *  versions, invented names). At most once a minute unless forced; reads sweep too, so a
   *  store nobody reports to any more still empties. */
  private sweep(now: number, force = false): void {
    if (!force && now - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = now;
    const oldest = this.oldestIndex(now);
    for (const [name, l] of this.slots) if (dropBefore(l, oldest) === 0) this.slots.delete(name);
  }

  /**
   * Traffic in [fromMs, toMs), to slot precision. Consecutive windows that share a boundary
   * partition the data: nothing is counted twice or dropped.
   */
  query(cluster: string, fromMs: number, toMs: number): WindowStats {
    this.sweep(this.now());
    const from = Math.floor(fromMs / this.resolutionMs);
    const to = Math.floor(toMs / this.resolutionMs);
    const out: WindowStats = { requests: 0, successful: 0, errors: 0, latency: new Map(), nodes: 0 };
    const nodes = new Set<string>();
    for (const slot of this.slots.get(cluster) ?? []) {
      if (slot.index < from || slot.index >= to) continue;
      out.successful += slot.successful;
      out.errors += slot.errors;
      if (slot.latency) mergeBuckets(out.latency, slot.latency);
      for (const n of slot.nodes) nodes.add(n);
    }
    out.requests = out.successful + out.errors;
    out.nodes = nodes.size;
    return out;
  }

  clusters(): string[] {
    this.sweep(this.now());
    return [...this.slots.keys()].sort();
  }
}

/** Drops slots older than `oldest`; returns how many are left. */
function dropBefore(list: Slot[], oldest: number): number {
  let drop = 0;
  while (drop < list.length && list[drop]!.index < oldest) drop++;
  if (drop > 0) list.splice(0, drop);
  return list.length;
}
