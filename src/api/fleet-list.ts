// The fleet at any size: GET /v1/fleet pages and filters the node list (without parameters it
// is the whole fleet, as it always was), GET /v1/fleet/summary counts nodes by sync state, and
// FleetSummaryFeed recomputes those counts at most once a second while nodes connect, ACK or
// NACK, for the event stream: a dashboard never re-fetches the whole fleet to stay current.
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { NodeStatus, XdsServer } from '../xds/server.js';
import { nodeState, syncState, XDS_TYPES } from './fleet-sync.js';
import type { XdsShort } from './fleet-sync.js';
import { json } from './route-docs.js';
import { FleetListSchema, FleetSummarySchema } from './schemas.js';

export const FleetQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('nodes per page (1-1000, default 100 when any parameter is given); without any parameter: every node'),
  offset: z.coerce.number().int().min(0).optional().describe('nodes to skip (in node id order)'),
  filter: z.string().max(256).optional().describe('only nodes whose id, cluster or user agent contains this text (case-insensitive)'),
  state: z.enum(['synced', 'stale', 'nacked']).optional().describe('only nodes in this state (nacked: some type rejected the last version sent)'),
});
type FleetQuery = z.output<typeof FleetQuery>;
export type FleetSummary = z.output<typeof FleetSummarySchema>;

const MAX_AGENTS = 20;
const DEFAULT_LIMIT = 100;

export function fleetPage(all: NodeStatus[], q: FleetQuery): Omit<z.output<typeof FleetListSchema>, 'nodes'> & { nodes: NodeStatus[] } {
  // Without a query, the answer it always was (sluice fleet and scripts read it).
  if (q.limit === undefined && q.offset === undefined && q.filter === undefined && q.state === undefined) return { nodes: all };
  const text = q.filter?.toLowerCase();
  const nodes = all.filter(
    (n) =>
      (!text || n.id.toLowerCase().includes(text) || n.cluster.toLowerCase().includes(text) || n.userAgent.toLowerCase().includes(text)) &&
      (!q.state || nodeState(n) === q.state),
  );
  const offset = q.offset ?? 0;
  const limit = q.limit ?? DEFAULT_LIMIT;
  return { nodes: nodes.slice(offset, offset + limit), total: nodes.length, offset, limit };
}

export function summarize(nodes: NodeStatus[], now = new Date()): FleetSummary {
  const counts = () => ({ synced: 0, stale: 0, nacked: 0, notSent: 0 });
  const byType = { LDS: counts(), RDS: counts(), CDS: counts(), EDS: counts() };
  const byState = { synced: 0, stale: 0, nacked: 0 };
  const agents = new Map<string, number>();
  const KEY = { SYNCED: 'synced', STALE: 'stale', NACKED: 'nacked', 'NOT SENT': 'notSent' } as const;
  let streams = 0;
  for (const n of nodes) {
    streams += n.streams.length;
    // One pass over the node's types (this runs over the whole fleet).
    let worst: 'synced' | 'stale' | 'nacked' = 'synced';
    for (const url in n.types) {
      const short = SHORT_BY_TYPE.get(url.slice(url.lastIndexOf('/') + 1));
      if (!short) continue;
      const s = syncState(n.types[url]);
      if (s === '-') continue;
      byType[short][KEY[s]]++;
      if (s === 'NACKED') worst = 'nacked';
      else if (s === 'STALE' && worst === 'synced') worst = 'stale';
    }
    byState[worst]++;
    // Agent names without versions, and only so many: the summary stays small whatever connects.
    const slash = n.userAgent.indexOf('/');
    let agent = (slash < 0 ? n.userAgent : n.userAgent.slice(0, slash)) || 'unknown';
    if (!agents.has(agent) && agents.size >= MAX_AGENTS) agent = 'other';
    agents.set(agent, (agents.get(agent) ?? 0) + 1);
  }
  return { nodes: nodes.length, streams, byState, byType, byUserAgent: Object.fromEntries(agents), at: now.toISOString() };
}

const SHORT_BY_TYPE = new Map<string, XdsShort>(XDS_TYPES.map(([short, name]) => [name, short]));

/** Emits 'summary' when the counts change, at most once per `everyMs`, while anyone listens. */
export class FleetSummaryFeed extends EventEmitter<{ summary: [FleetSummary] }> {
  private last: FleetSummary | null = null;
  private lastKey = '';
  private dirty = true;
  private timer: NodeJS.Timeout | null = null;
  private lastRunAt = 0;

  constructor(
    private readonly fleet: () => NodeStatus[],
    xds: Pick<XdsServer, 'on'>,
    private readonly everyMs = 1000,
  ) {
    super();
    const changed = () => this.changed();
    for (const e of ['connect', 'disconnect', 'ack', 'nack'] as const) xds.on(e, changed);
    // Version changes sent to nodes are STALE until ACKed: ACKs and NACKs mark those too.
  }

  /** The counts now (recomputed only when something changed since the last time). */
  current(): FleetSummary {
    if (this.dirty || !this.last) this.recompute();
    return this.last!;
  }

  /** Marks the counts stale; schedules one recomputation for the listeners. */
  changed(): void {
    this.dirty = true;
    if (this.timer || this.listenerCount('summary') === 0) return;
    const wait = Math.max(0, this.lastRunAt + this.everyMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      const before = this.lastKey;
      this.recompute();
      if (this.lastKey !== before) this.emit('summary', this.last!);
    }, wait);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.removeAllListeners();
  }

  private recompute(): void {
    this.dirty = false;
    this.lastRunAt = Date.now();
    this.last = summarize(this.fleet());
    const { at: _at, ...counts } = this.last;
    this.lastKey = JSON.stringify(counts);
  }
}

export const fleetListDoc = {
  operationId: 'listFleet',
  summary: 'Connected xDS nodes and what each holds (paged and filtered on request)',
  description:
    'Without parameters: every node, as `sluice fleet` reads it. With limit, offset, filter or state: one page, in node id order, and `total` (the matching nodes).',
  tags: ['fleet'],
  querystring: FleetQuery,
  response: { 200: json('the nodes (with a query: one page, and total, offset, limit)', FleetListSchema, { nodes: [], total: 0, offset: 0, limit: 50 }) },
};

export function fleetSummaryRoutes(feed: FleetSummaryFeed) {
  return (plain: FastifyInstance) => {
    plain.withTypeProvider<ZodTypeProvider>().get(
      '/v1/fleet/summary',
      {
        schema: {
          operationId: 'getFleetSummary',
          summary: 'Nodes by sync state, per xDS type and overall (counts only)',
          description: 'The event stream (GET /v1/events) sends the same object as `fleet` events when the counts change (at most once a second).',
          tags: ['fleet'],
          response: {
            200: json('the counts', FleetSummarySchema, {
              nodes: 3,
              streams: 3,
              byState: { synced: 2, stale: 0, nacked: 1 },
              byType: {
                LDS: { synced: 3, stale: 0, nacked: 0, notSent: 0 },
                RDS: { synced: 2, stale: 0, nacked: 1, notSent: 0 },
                CDS: { synced: 3, stale: 0, nacked: 0, notSent: 0 },
                EDS: { synced: 3, stale: 0, nacked: 0, notSent: 0 },
              },
              byUserAgent: { 'grpc-node-js': 2, envoy: 1 },
              at: '2026-03-01T10:15:02.114Z',
            }),
          },
        },
      },
      async () => feed.current(),
    );
  };
}
