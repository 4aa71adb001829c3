// Where a node stands per xDS type (like `istioctl proxy-status`): shared by GET /v1/fleet's
// filters, GET /v1/fleet/summary and the CLI's `sluice fleet`.
import type { NodeStatus } from '../xds/server.js';

export const XDS_TYPES = [
  ['LDS', 'envoy.config.listener.v3.Listener'],
  ['RDS', 'envoy.config.route.v3.RouteConfiguration'],
  ['CDS', 'envoy.config.cluster.v3.Cluster'],
  ['EDS', 'envoy.config.endpoint.v3.ClusterLoadAssignment'],
] as const;
export type XdsShort = (typeof XDS_TYPES)[number][0];

/** SYNCED: the last version sent is ACKed. STALE: sent, not ACKed yet. NACKED: the last version
 *  sent was rejected. NOT SENT: subscribed, nothing sent yet. "-": not subscribed. */
export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT' | '-';

type TypeStatus = NodeStatus['types'][string];

export function typeStatus(node: NodeStatus, short: XdsShort): TypeStatus | undefined {
  const name = XDS_TYPES.find(([s]) => s === short)![1];
  return Object.entries(node.types).find(([url]) => url.endsWith(`/${name}`))?.[1];
}

export function syncState(t: TypeStatus | undefined): SyncState {
  if (!t) return '-';
  if (!t.sentVersion) return 'NOT SENT';
  if (t.ackedVersion === t.sentVersion) return 'SYNCED';
  if (t.lastNack && t.lastNack.version === t.sentVersion) return 'NACKED';
  return 'STALE';
}

/** A node as a whole: NACKED if any type is, else STALE if any type waits for an ACK, else SYNCED. */
export function nodeState(node: NodeStatus): 'synced' | 'stale' | 'nacked' {
  let stale = false;
  for (const [short] of XDS_TYPES) {
    const s = syncState(typeStatus(node, short));
    if (s === 'NACKED') return 'nacked';
    if (s === 'STALE') stale = true;
  }
  return stale ? 'stale' : 'synced';
}
