// The fleet at any size: GET /v1/fleet pages and filters (and without parameters answers as it
// always did), GET /v1/fleet/summary counts by sync state, and the event stream sends the counts
// when they change, so a dashboard never re-reads the whole fleet. Real xDS streams on loopback.
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize } from '../../src/api/fleet-list.js';
import type { NodeStatus } from '../../src/xds/server.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { SotwClient } from '../support/ads-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

describe('fleet list and summary', () => {
  let sluice: TestSluice;
  const clients: SotwClient[] = [];

  /** A node that takes every cluster and ACKs it, or NACKs it. */
  async function connect(id: string, answer: 'ack' | 'nack' = 'ack', agent = 'grpc-node-js'): Promise<void> {
    const c = SotwClient.open(sluice.xdsPort, { node: { id, cluster: id.split('-')[0], user_agent_name: agent } });
    clients.push(c);
    c.subscribe(TypeUrl.Cluster, []);
    const r = await c.next();
    if (answer === 'ack') c.ack(r);
    else c.nack(r, 'cluster echo-v2: unknown field');
  }

  beforeAll(async () => {
    sluice = await startTestSluice();
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 50051, v2: 50052 }))).status).toBe(201);
    await connect('web-a');
    await connect('web-b');
    await connect('api-c', 'nack', 'envoy');
    await eventually(async () => (await sluice.api('GET', '/v1/fleet/summary')).body.byState.nacked === 1);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sluice?.stop();
  });

  it('answers every node, as before, without parameters', async () => {
    const { body } = await sluice.api('GET', '/v1/fleet');
    expect(Object.keys(body).sort()).toEqual(['nodes', 'replicas']); // every node, and every replica (one here)
    expect(body.nodes.map((n: NodeStatus) => n.id)).toEqual(['api-c', 'web-a', 'web-b']);
    expect(body.replicas).toEqual([{ id: expect.any(String), nodes: 3 }]);
  });

  it('pages in node id order', async () => {
    const first = (await sluice.api('GET', '/v1/fleet?limit=2')).body;
    expect(first.nodes.map((n: NodeStatus) => n.id)).toEqual(['api-c', 'web-a']);
    expect(first).toMatchObject({ total: 3, offset: 0, limit: 2 });
    const second = (await sluice.api('GET', '/v1/fleet?limit=2&offset=2')).body;
    expect(second.nodes.map((n: NodeStatus) => n.id)).toEqual(['web-b']);
    expect((await sluice.api('GET', '/v1/fleet?offset=5')).body).toMatchObject({ nodes: [], total: 3, limit: 100 });
  });

  it('filters by text (id, cluster, agent; any case) and by state', async () => {
    const ids = async (q: string) => (await sluice.api('GET', `/v1/fleet?${q}`)).body.nodes.map((n: NodeStatus) => n.id);
    expect(await ids('filter=WEB-B')).toEqual(['web-b']);
    expect(await ids('filter=envoy')).toEqual(['api-c']);
    expect(await ids('state=nacked')).toEqual(['api-c']);
    expect(await ids('state=synced')).toEqual(['web-a', 'web-b']);
    expect(await ids('state=stale')).toEqual([]);
    expect((await sluice.api('GET', '/v1/fleet?filter=web&limit=1')).body).toMatchObject({ total: 2, limit: 1 });
  });

  it('refuses bad parameters with a 400 naming them', async () => {
    for (const [q, field] of [
      ['limit=0', 'query.limit'],
      ['limit=1001', 'query.limit'],
      ['limit=ten', 'query.limit'],
      ['offset=-1', 'query.offset'],
      ['state=broken', 'query.state'],
      [`filter=${'x'.repeat(257)}`, 'query.filter'],
      ['colour=blue', 'query.colour'],
    ]) {
      const res = await sluice.api('GET', `/v1/fleet?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.details.map((d: { field: string }) => d.field), q).toContain(field);
    }
  });

  it('counts nodes by state, per type and overall', async () => {
    const { body } = await sluice.api('GET', '/v1/fleet/summary');
    expect(body).toMatchObject({
      nodes: 3,
      streams: 3,
      byState: { synced: 2, stale: 0, nacked: 1 },
      byType: { CDS: { synced: 2, stale: 0, nacked: 1, notSent: 0 }, LDS: { synced: 0, stale: 0, nacked: 0, notSent: 0 } },
      byUserAgent: { 'grpc-node-js': 2, envoy: 1 },
    });
  });

  it('sends the counts on the event stream when they change', async () => {
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${sluice.httpPort}/v1/events`, { signal: controller.signal });
    const summaries: { nodes: number; byState: { nacked: number } }[] = [];
    const parser = createParser({ onEvent: (e) => e.event === 'fleet' && summaries.push(JSON.parse(e.data)) });
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
    })().catch(() => undefined);
    try {
      await eventually(() => summaries.length >= 1);
      expect(summaries[0]).toMatchObject({ nodes: 3, byState: { nacked: 1 } });
      await connect('web-d');
      await eventually(() => summaries.some((s) => s.nodes === 4));
      await clients.at(-1)!.close();
      await eventually(() => summaries.at(-1)?.nodes === 3);
    } finally {
      controller.abort();
      await reading;
    }
  });

  it('keeps the summary small whatever connects: at most 20 agent names', () => {
    const node = (i: number): NodeStatus => ({
      id: `n${i}`,
      cluster: 'c',
      userAgent: `agent-${i % 50}/1.0`,
      group: 'g',
      clientFeatures: [],
      connectedSince: '2026-03-01T10:00:00.000Z',
      streams: [{ id: i, flavour: 'sotw', connectedSince: '2026-03-01T10:00:00.000Z' }],
      types: {},
    });
    const s = summarize(Array.from({ length: 10_000 }, (_, i) => node(i)));
    expect(s.nodes).toBe(10_000);
    expect(Object.keys(s.byUserAgent)).toHaveLength(21);
    expect(s.byUserAgent.other).toBe(10_000 - 20 * 200);
    expect(JSON.stringify(s).length).toBeLessThan(2000);
  });
});
