// The fleet across replicas: this replica's own xDS server plus the streams the other replicas
// report in their summaries. A rollout step (and a rollback's ?wait=ack) waits for the
// service's nodes on every replica: another replica counts as settled for a service once it
// has applied the service's latest change (its summary's `applied` revision) and none of its
// streams of that service is pending.
import { kindOfGroup } from '../reconcile/node-groups.js';
import type { NodeConvergence, ServiceFleet } from '../rollout/scheduler.js';
import type { NodeStatus, XdsServer } from '../xds/server.js';
import type { ReplicaPresence } from './presence.js';
import type { ReplicaSummary } from './summary.js';

/** What the fleet needs from the state writer. */
export interface ServiceRevisions {
  /** The store revision of the service's latest change known here. */
  serviceRevision(service: string): number;
  /** False while a rollback of the service is published but not stored (others cannot have it). */
  isPersisted(service: string): boolean;
}

export interface ReplicatedFleetOptions {
  /** This replica's id. */
  self: string;
  xds: XdsServer;
  state: ServiceRevisions;
  /** The other replicas (none with the file store). */
  presence?: ReplicaPresence;
}

export type FleetNode = NodeStatus & { replica: string };

/** How long one look at the own streams lasts while other replicas are still behind. */
const SLICE_MS = 200;

export class ReplicatedFleet implements ServiceFleet {
  constructor(private readonly opts: ReplicatedFleetOptions) {}

  async awaitService(service: string, opts: { timeoutMs: number; minNodes?: number }): Promise<NodeConvergence[]> {
    const { xds, presence, self } = this.opts;
    const started = performance.now();
    const deadline = started + opts.timeoutMs;
    const minNodes = opts.minNodes ?? 0;
    const target = this.opts.state.serviceRevision(service);
    const persisted = this.opts.state.isPersisted(service);
    /** When each remote stream was first seen answering, for its `ms`. */
    const answeredAt = new Map<string, number>();
    for (;;) {
      const remote = this.remote(service, target, persisted, started, answeredAt);
      const remoteAcked = new Set(remote.streams.filter((s) => s.state === 'acked').map((s) => s.node));
      const sliceStart = performance.now();
      const left = Math.max(0, deadline - sliceStart);
      const own = await xds.awaitOwner(service, {
        timeoutMs: remote.settled ? left : Math.min(left, SLICE_MS),
        minNodes: Math.max(0, minNodes - remoteAcked.size),
      });
      const offset = Math.round(sliceStart - started);
      // A stream that answered in an earlier slice keeps the time it answered then.
      const mine: NodeConvergence[] = own.streams.map((s) => {
        const key = `\0${s.node}\0${s.stream}`;
        if (s.ms !== null && !answeredAt.has(key)) answeredAt.set(key, s.ms + offset);
        return { ...s, kind: kindOfGroup(s.group), ms: s.ms === null ? null : answeredAt.get(key)!, replica: self };
      });
      const after = presence ? this.remote(service, target, persisted, started, answeredAt) : remote;
      const all = [...mine, ...after.streams].sort(byNode);
      const acked = new Set(all.filter((s) => s.state === 'acked').map((s) => s.node)).size;
      const ownSettled = !all.some((s) => s.replica === self && s.state === 'pending');
      if ((ownSettled && after.settled && acked >= minNodes) || performance.now() >= deadline) return all;
      if (ownSettled && !after.settled && presence) await presence.nextUpdate(Math.min(SLICE_MS, deadline - performance.now()));
    }
  }

  /** Every node of every replica, each with the replica it is connected to. */
  nodes(): { nodes: FleetNode[]; replicas: { id: string; nodes: number; nodesTruncated?: number }[] } {
    const own = this.opts.xds.fleet().map((n) => ({ ...n, replica: this.opts.self }));
    const others = this.opts.presence?.others() ?? [];
    const nodes = [...own, ...others.flatMap((r) => r.nodes.map((n) => ({ ...n, replica: r.id })))];
    nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.replica < b.replica ? -1 : 1));
    const replicas = [
      { id: this.opts.self, nodes: own.length },
      ...others.map((r) => ({ id: r.id, nodes: r.nodes.length, ...(r.nodesTruncated ? { nodesTruncated: r.nodesTruncated } : {}) })),
    ].sort((a, b) => (a.id < b.id ? -1 : 1));
    return { nodes, replicas };
  }

  /** The other replicas' streams of a service, as far as they answered `target`. */
  private remote(
    service: string,
    target: number,
    persisted: boolean,
    started: number,
    answeredAt: Map<string, number>,
  ): { streams: NodeConvergence[]; settled: boolean } {
    const streams: NodeConvergence[] = [];
    let settled = true;
    for (const r of this.opts.presence?.others() ?? []) {
      const s = r.services[service];
      if (!s) continue;
      const current = persisted && r.applied >= target;
      for (const st of s.streams) {
        if (st.state === 'disconnected') continue;
        const state = current ? st.state : 'pending';
        const key = `${r.id}\0${st.node}\0${st.stream}`;
        if (state !== 'pending' && !answeredAt.has(key)) answeredAt.set(key, Math.round(performance.now() - started));
        streams.push({
          node: st.node,
          stream: st.stream,
          state,
          ms: state === 'pending' ? null : answeredAt.get(key)!,
          replica: r.id,
          ...(st.kind !== undefined ? { kind: st.kind } : {}),
          ...(state === 'rejected' && st.message !== undefined ? { message: st.message } : {}),
          ...(state === 'pending' && !current ? { message: behind(r, persisted) } : {}),
        });
      }
      const live = s.counts.acked + s.counts.pending + s.counts.rejected;
      if (current ? s.counts.pending > 0 : live > 0) settled = false;
    }
    return { streams, settled };
  }
}

function byNode(a: NodeConvergence, b: NodeConvergence): number {
  return a.node < b.node ? -1 : a.node > b.node ? 1 : (a.replica ?? '') < (b.replica ?? '') ? -1 : (a.replica ?? '') > (b.replica ?? '') ? 1 : a.stream - b.stream;
}

function behind(r: ReplicaSummary, persisted: boolean): string {
  return persisted
    ? `replica ${r.id} has not applied this change yet`
    : `replica ${r.id} cannot get this change: it is not stored yet (the store cannot be written)`;
}
