// Several replicas on etcd: leader election (who schedules), presence (each replica's summary
// under its lease), and the views that combine them — the fleet for rollout steps, ?wait=ack
// and GET /v1/fleet, and the telemetry for the leader's analysis. With the file store there is
// one replica: it leads, and the views are its own.
import type { Logger } from 'pino';
import { parseDuration } from '../model/duration.js';
import { analysisDue, isActive } from '../rollout/machine.js';
import type { StateWriter } from '../state/writer.js';
import type { EtcdStore } from '../store/etcd-store.js';
import type { WindowedStats } from '../telemetry/window.js';
import type { XdsServer } from '../xds/server.js';
import { ReplicatedFleet } from './fleet.js';
import type { Leadership } from './leadership.js';
import { EtcdLeadership, SoleLeadership } from './leadership.js';
import { ReplicaPresence } from './presence.js';
import type { ReplicaSummary } from './summary.js';
import { boundedNodes, serviceStreams } from './summary.js';
import type { ExportedCluster } from './telemetry.js';
import { ReplicaWindows, SLOT_MS, TelemetryExporter } from './telemetry.js';

export interface ReplicationOptions {
  /** The etcd store, when replicas share one (else this replica is alone). */
  etcd?: EtcdStore;
  /** This replica's id (--replica-id). */
  id: string;
  /** Lease TTL of the leadership and of this replica's summary (seconds). */
  ttlSeconds: number;
  xds: XdsServer;
  writer: StateWriter;
  /** Resolves once the cache holds a desired state at least as new as `revision`. */
  published(revision: number): Promise<void>;
  /** This replica's telemetry windows. */
  windows: WindowedStats;
  clusterOf(service: string, version: string): string;
  /** How long load reports trail the traffic they describe (added to exported windows). */
  reportLagMs: number;
  log: Logger;
}

export interface ReplicaStatus {
  self: string;
  leader: string | null;
  /** Every live replica (this one included), by id. */
  replicas: { id: string; leader: boolean; nodes: number; applied: number; startedAt: string; seenAt: string }[];
}

/** How often summaries are refreshed while analysis needs their telemetry. */
const TELEMETRY_REFRESH_MS = 1000;
const FLEET_REFRESH_MS = 1000;

export class Replication {
  readonly leadership: Leadership;
  readonly presence?: ReplicaPresence;
  readonly fleet: ReplicatedFleet;
  /** What analysis reads: this replica's windows and the others' exports. */
  readonly windows: WindowedStats;
  private readonly exporter: TelemetryExporter;
  private readonly startedAt = new Date().toISOString();
  private telemetryTimer?: NodeJS.Timeout;
  private readonly detach: (() => void)[] = [];
  /** The fleet part of the summary, rebuilt at most once a second unless nodes come or go. */
  private fleetPart?: { at: number; nodes: ReplicaSummary['nodes']; truncated?: number };

  constructor(private readonly opts: ReplicationOptions) {
    const log = opts.log;
    this.exporter = new TelemetryExporter(opts.windows);
    if (opts.etcd) {
      this.leadership = new EtcdLeadership({ store: opts.etcd, id: opts.id, ttlSeconds: opts.ttlSeconds, log });
      this.presence = new ReplicaPresence({ store: opts.etcd, id: opts.id, ttlSeconds: opts.ttlSeconds, log, build: () => this.summary() });
      const presence = this.presence;
      this.windows = new ReplicaWindows(opts.windows, () => presence.others().map((r) => r.telemetry));
    } else {
      this.leadership = new SoleLeadership(opts.id);
      this.windows = opts.windows;
    }
    this.fleet = new ReplicatedFleet({ self: opts.id, xds: opts.xds, state: opts.writer, presence: this.presence });
  }

  /** Starts presence and the campaign (after the state is loaded and the scheduler wired). */
  async start(): Promise<void> {
    const presence = this.presence;
    if (presence) {
      const changed = () => presence.changed();
      const { xds, writer } = this.opts;
      for (const event of ['ack', 'nack', 'connect', 'disconnect'] as const) {
        const on = event === 'connect' || event === 'disconnect' ? () => ((this.fleetPart = undefined), changed()) : changed;
        xds.on(event, on);
        this.detach.push(() => xds.off(event, on));
      }
      writer.on('change', changed);
      this.leadership.on('elected', changed);
      this.leadership.on('lost', changed);
      this.detach.push(() => writer.off('change', changed));
      this.telemetryTimer = setInterval(() => {
        if (this.exported().length > 0) presence.changed();
      }, TELEMETRY_REFRESH_MS);
      this.telemetryTimer.unref();
      await presence.start();
    }
    this.leadership.start();
  }

  /**
   * Before the leader measures a window closing at `to`: waits (at most `timeoutMs`) until every
   * other replica has exported its telemetry up to then. A replica that does not in time is
   * measured with what it exported (logged).
   */
  async awaitTelemetry(to: Date, timeoutMs: number): Promise<void> {
    const presence = this.presence;
    if (!presence) return;
    const needed = Math.floor(to.getTime() / SLOT_MS) * SLOT_MS;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = presence.others().filter((r) => (r.telemetry?.until ?? 0) < needed);
      if (behind.length === 0) return;
      if (Date.now() >= deadline) {
        this.opts.log.warn({ replicas: behind.map((r) => r.id), until: new Date(needed).toISOString() }, 'measuring without the latest telemetry of these replicas');
        return;
      }
      await presence.nextUpdate(deadline - Date.now());
    }
  }

  status(): ReplicaStatus {
    const leader = this.leadership.leader ?? null;
    const me = { id: this.opts.id, leader: this.leadership.isLeader, nodes: this.opts.xds.fleet().length, applied: this.opts.writer.appliedRevision, startedAt: this.startedAt, seenAt: new Date().toISOString() };
    const others = (this.presence?.others() ?? []).map((r) => ({
      id: r.id,
      leader: r.id === leader,
      nodes: r.nodes.length + (r.nodesTruncated ?? 0),
      applied: r.applied,
      startedAt: r.startedAt,
      seenAt: new Date(r.at).toISOString(),
    }));
    return { self: this.opts.id, leader, replicas: [me, ...others].sort((a, b) => (a.id < b.id ? -1 : 1)) };
  }

  async close(): Promise<void> {
    if (this.telemetryTimer) clearInterval(this.telemetryTimer);
    for (const d of this.detach.splice(0)) d();
    await this.leadership.close();
    await this.presence?.close();
  }

  /** This replica's summary, describing its published state (see summary.ts). */
  private async summary(): Promise<ReplicaSummary> {
    const { writer, xds } = this.opts;
    // The revision first: what is published after the wait is at least that new.
    const applied = writer.appliedRevision;
    await this.opts.published(writer.state.revision);
    const services: ReplicaSummary['services'] = {};
    for (const name of writer.state.services.keys()) {
      const status = xds.ownerStatus(name);
      if (status.streams.length > 0) services[name] = serviceStreams(status.streams);
    }
    // Every node's detail costs more than the convergence above: rebuilt at most once a second
    // (GET /v1/fleet on another replica may show an ACK that much later).
    if (!this.fleetPart || Date.now() - this.fleetPart.at >= FLEET_REFRESH_MS) this.fleetPart = { at: Date.now(), ...boundedNodes(xds.fleet()) };
    const { nodes, truncated } = this.fleetPart;
    const telemetry = this.exporter.export(this.exported());
    return {
      id: this.opts.id,
      startedAt: this.startedAt,
      at: Date.now(),
      applied,
      leader: this.leadership.isLeader,
      services,
      nodes,
      ...(truncated ? { nodesTruncated: truncated } : {}),
      ...(telemetry ? { telemetry } : {}),
    };
  }

  /** The clusters analysis reads now (canary and stable of rollouts with a run in progress). */
  private exported(): ExportedCluster[] {
    const out = new Map<string, number>();
    for (const r of this.opts.writer.state.rollouts.values()) {
      if (!isActive(r)) continue;
      const due = analysisDue(r);
      if (due.length === 0) continue;
      const horizonMs = Math.max(...due.map((d) => parseDuration(d.spec.interval))) + this.opts.reportLagMs + 2 * SLOT_MS;
      for (const version of [r.canary, r.stable]) {
        const cluster = this.opts.clusterOf(r.service, version);
        out.set(cluster, Math.max(out.get(cluster) ?? 0, horizonMs));
      }
    }
    return [...out].map(([cluster, horizonMs]) => ({ cluster, horizonMs }));
  }
}
