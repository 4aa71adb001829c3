// `sluice fleet`: per node, where each xDS type stands (like `istioctl proxy-status`).
import type { NodeStatus } from '../xds/server.js';
import { syncState, typeStatus, XDS_TYPES } from '../api/fleet-sync.js';
import type { SyncState, XdsShort } from '../api/fleet-sync.js';
import { age, table } from './output.js';

/** The NACKs a node holds now (a rejected version that is still the one sent). */
export function nacks(node: NodeStatus): string[] {
  return XDS_TYPES.flatMap(([short]) => {
    const t = typeStatus(node, short);
    return t && syncState(t) === 'NACKED' ? [`${short}: ${t.lastNack!.message}`] : [];
  });
}

export function fleetTable(nodes: NodeStatus[], wide: boolean): string {
  if (nodes.length === 0) return 'No xDS nodes connected.\n';
  const header = ['NODE', 'CLUSTER', 'AGENT', ...XDS_TYPES.map(([s]) => s), ...(wide ? ['STREAMS', 'CONNECTED', 'NACK'] : [])];
  const rows = nodes.map((n) => [
    n.id,
    n.cluster || '-',
    n.userAgent || '-',
    ...XDS_TYPES.map(([s]) => syncState(typeStatus(n, s))),
    ...(wide ? [n.streams.map((s) => `${s.id}/${s.flavour}`).join(',') || '-', age(n.connectedSince), nacks(n).join(' | ') || '-'] : []),
  ]);
  const nacked = nodes.filter((n) => nacks(n).length > 0).length;
  const footer = !wide && nacked ? `\n${nacked} node(s) NACKed: -o wide or sluice fleet NODE shows the message.\n` : '';
  return table(header, rows) + footer;
}

/** One node in full: every type's subscription, versions and last NACK. */
export function nodeDetail(n: NodeStatus): string {
  const lines = [
    `Node:       ${n.id}`,
    `Cluster:    ${n.cluster || '-'}`,
    `Agent:      ${n.userAgent || '-'}`,
    `Group:      ${n.group}`,
    `Connected:  ${n.connectedSince} (${age(n.connectedSince)} ago)`,
    `Streams:    ${n.streams.map((s) => `#${s.id} ${s.flavour} since ${s.connectedSince}`).join(', ')}`,
    '',
  ];
  const rows = XDS_TYPES.map(([short]) => {
    const t = typeStatus(n, short);
    const subs = t ? (t.subscription === '*' ? '*' : t.subscription.join(',') || '(none)') : '-';
    return [short, syncState(t), t?.sentVersion ?? '-', t?.ackedVersion ?? '-', age(t?.ackedAt), subs];
  });
  let out = lines.join('\n') + '\n' + table(['TYPE', 'STATE', 'SENT', 'ACKED', 'ACK AGE', 'SUBSCRIBED'], rows);
  for (const [short] of XDS_TYPES) {
    const nack = typeStatus(n, short)?.lastNack;
    if (nack) out += `\nLast ${short} NACK (version ${nack.version}, ${nack.at}):\n  ${nack.message}\n`;
  }
  return out;
}

/** "3 nodes: RDS 2 SYNCED, 1 STALE" — the routes are what rollouts move. */
export function fleetSummary(nodes: NodeStatus[], short: XdsShort = 'RDS'): string {
  if (nodes.length === 0) return 'no xDS nodes connected';
  const counts = new Map<SyncState, number>();
  for (const n of nodes) {
    const s = syncState(typeStatus(n, short));
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const parts = [...counts].map(([s, c]) => `${c} ${s === '-' ? 'not subscribed' : s}`);
  return `${nodes.length} node${nodes.length === 1 ? '' : 's'}; ${short}: ${parts.join(', ')}`;
}
