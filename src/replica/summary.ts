// What one replica tells the others through etcd (`replicas/<id>`, under its lease): where the
// nodes connected to it stand for each service, its fleet for GET /v1/fleet, and the telemetry
// the leader's analysis needs. Built from this replica's own xDS server and telemetry only.
import { kindOfGroup } from '../reconcile/node-groups.js';
import type { OwnerState } from '../xds/fleet.js';
import type { NodeStatus } from '../xds/server.js';
import type { TelemetryExport } from './telemetry.js';

export const REPLICA_PREFIX = 'replicas/';

/** One stream of a node connected to the replica, for one service. */
export interface ReplicaStream {
  node: string;
  stream: number;
  state: OwnerState;
  /** The kind of client (`envoy`, `grpc`): history counts the Envoys (only they mirror). */
  kind?: string;
  message?: string;
}

export interface ServiceStreams {
  counts: Record<OwnerState, number>;
  /** Every stream, up to MAX_STREAMS_PER_SERVICE (then `truncated` says how many are left out). */
  streams: ReplicaStream[];
  truncated?: number;
}

export interface ReplicaSummary {
  id: string;
  startedAt: string;
  /** When this summary was built (ms since the epoch). */
  at: number;
  /** Every store change up to this revision is applied and published to this replica's nodes:
   *  `services` describes answers to that state or a newer one. */
  applied: number;
  leader: boolean;
  /** Services with streams on this replica. */
  services: Record<string, ServiceStreams>;
  /** The replica's nodes (GET /v1/fleet), up to a size bound (`nodesTruncated`: left out). */
  nodes: NodeStatus[];
  nodesTruncated?: number;
  telemetry?: TelemetryExport;
}

/** Bounds on what one summary may hold (etcd values are limited to 1.5 MiB by default). */
export const MAX_STREAMS_PER_SERVICE = 5000;
export const MAX_NODES_BYTES = 512 * 1024;

export function serviceStreams(streams: readonly { node: string; stream: number; group: string; state: OwnerState; message?: string }[]): ServiceStreams {
  const counts: Record<OwnerState, number> = { acked: 0, pending: 0, rejected: 0, disconnected: 0 };
  for (const s of streams) counts[s.state]++;
  // Pending and rejected streams first: what a waiter must know is never cut off.
  const ordered = [...streams].sort((a, b) => rank(a.state) - rank(b.state));
  const kept = ordered.slice(0, MAX_STREAMS_PER_SERVICE).map((s) => ({
    node: s.node,
    stream: s.stream,
    state: s.state,
    kind: kindOfGroup(s.group),
    ...(s.message !== undefined ? { message: s.message.slice(0, 1000) } : {}),
  }));
  return { counts, streams: kept, ...(streams.length > kept.length ? { truncated: streams.length - kept.length } : {}) };
}

function rank(state: OwnerState): number {
  return state === 'rejected' ? 0 : state === 'pending' ? 1 : state === 'acked' ? 2 : 3;
}

/** The nodes that fit in MAX_NODES_BYTES of JSON, and how many did not. */
export function boundedNodes(nodes: NodeStatus[]): { nodes: NodeStatus[]; truncated?: number } {
  let bytes = 0;
  const kept: NodeStatus[] = [];
  for (const n of nodes) {
    bytes += JSON.stringify(n).length + 1;
    if (bytes > MAX_NODES_BYTES) break;
    kept.push(n);
  }
  return kept.length === nodes.length ? { nodes: kept } : { nodes: kept, truncated: nodes.length - kept.length };
}
