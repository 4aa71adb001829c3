// Fleet isolation: a rollout waits only for the nodes of its own service. Clients of another
// service that stay silent or NACK do not hold it or pause it; a service with no node at all
// is flagged (and held with minNodes); a rollback waits for its own clients only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnXdsClient } from '../../src/demo/xds-client.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { SotwClient, struct } from '../support/ads-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

let sluice: TestSluice;
let v1: Backend;
let v2: Backend;
let echoClient: XdsClient;
const raw: SotwClient[] = [];

/** A raw gRPC-like client of `service` that takes its listener, asks for its routes and then
 *  either never answers them (an idle gRPC Python client) or NACKs them. */
async function misbehaving(nodeId: string, service: string, mode: 'silent' | 'nack'): Promise<SotwClient> {
  const c = SotwClient.open(sluice.xdsPort, { node: { id: nodeId, cluster: 'bad', user_agent_name: 'grpc-python' } });
  raw.push(c);
  c.subscribe(TypeUrl.Listener, [service]);
  c.ack(await c.next(5000, TypeUrl.Listener));
  c.subscribe(TypeUrl.RouteConfiguration, [service]);
  if (mode === 'nack')
    void (async () => {
      // Rejects every version of the routes it is sent, for as long as the stream lives.
      for (;;) c.nack(await c.next(60_000, TypeUrl.RouteConfiguration), 'route: unsupported field');
    })().catch(() => undefined);
  return c;
}

const rollout = (service: string, canary: string, steps: unknown[], extra: object = {}) =>
  sluice.api('POST', '/v1/rollouts', { service, canary, steps, ...extra });

beforeAll(async () => {
  sluice = await startTestSluice();
  [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
  expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
  expect((await sluice.api('PUT', '/v1/services/other', serviceOf({ v1: 7001, v2: 7002 }))).status).toBe(201);
  expect((await sluice.api('PUT', '/v1/services/lonely', serviceOf({ v1: 7101, v2: 7102 }))).status).toBe(201);
  echoClient = await spawnXdsClient({ nodeId: 'echo-client', xdsPort: sluice.xdsPort });
  await eventually(async () => (await echoClient.call('echo', 1)).versions.v1 === 1, 20_000, 100);
  await misbehaving('other-silent', 'other', 'silent');
  await misbehaving('other-nacks', 'other', 'nack');
});

afterAll(async () => {
  for (const c of raw) c.cancel();
  await echoClient?.stop();
  await Promise.all([v1?.stop(), v2?.stop()]);
  await sluice?.stop();
});

describe('fleet isolation', () => {
  it('runs a rollout to the end while another service\'s clients stay silent or NACK', async () => {
    // A change of `other` while its clients misbehave: one never answers, one rejects.
    expect((await rollout('other', 'v2', [{ setWeight: 50 }, { pause: {} }])).status).toBe(201);
    const created = await rollout('echo', 'v2', [{ setWeight: 20 }, { setWeight: 50 }, { setWeight: 100 }]);
    expect(created.status).toBe(201);
    const done = await eventually(async () => {
      const r = (await sluice.api('GET', '/v1/rollouts/echo')).body;
      return r.phase === 'Promoted' ? r : undefined;
    }, 20_000);
    const events = done.history.map((h: { event: string }) => h.event);
    expect(events).not.toContain('FleetRejected');
    expect(done.history.filter((h: { event: string }) => h.event === 'WeightAcked').map((h: { reason: string }) => h.reason)).toEqual([
      '1 node of the service acknowledged weight 20',
      '1 node of the service acknowledged weight 50',
      '1 node of the service acknowledged weight 100',
    ]);
    await eventually(async () => (await echoClient.call('echo', 10)).versions.v2 === 10);
    // Meanwhile `other`'s own rollout waits for its own nodes and is paused by its own NACK.
    const other = await eventually(async () => {
      const r = (await sluice.api('GET', '/v1/rollouts/other')).body;
      return r.phase === 'Paused' ? r : undefined;
    });
    expect(other.pausedBy).toBe('fleet');
    expect(other.history.at(-1).reason).toContain('other-nacks rejected the routes for weight 50: route: unsupported field');
  });

  it('waits for its own clients only when rolling back', async () => {
    expect((await rollout('echo', 'v1', [{ setWeight: 50 }, { pause: {} }])).status).toBe(201);
    const res = await sluice.api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'isolation' });
    expect(res.status).toBe(200);
    expect(res.body.fleet.acknowledged).toBe(true);
    expect(res.body.fleet.nodes.map((n: { node: string }) => n.node)).toEqual(['echo-client']);
    await eventually(async () => (await echoClient.call('echo', 10)).versions.v2 === 10);
  });

  it('flags a weight acknowledged by zero nodes, and holds it with minNodes until a node ACKs', async () => {
    expect((await rollout('lonely', 'v2', [{ setWeight: 10 }, { setWeight: 20 }])).status).toBe(201);
    const passed = await eventually(async () => {
      const r = (await sluice.api('GET', '/v1/rollouts/lonely')).body;
      return r.phase === 'Promoted' ? r : undefined;
    });
    const acks = passed.history.filter((h: { event: string }) => h.event === 'WeightAcked');
    expect(acks).toHaveLength(2);
    for (const a of acks) expect(a.reason).toContain('no node of the service is connected');

    // Back to v1 as stable, then a rollout that needs one node.
    expect((await sluice.api('PUT', '/v1/services/lonely', serviceOf({ v1: 7101, v2: 7102 }))).status).toBe(200);
    expect((await rollout('lonely', 'v2', [{ setWeight: 10 }, { pause: {} }], { minNodes: 1 })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 1500));
    const held = (await sluice.api('GET', '/v1/rollouts/lonely')).body;
    expect(held).toMatchObject({ phase: 'Progressing', step: 0, awaitingAck: { canaryWeight: 10 } });
    const client = await spawnXdsClient({ nodeId: 'lonely-client', xdsPort: sluice.xdsPort });
    try {
      await client.call('lonely', 1, { deadlineMs: 2000 }); // subscribes (its backends do not exist)
      const reached = await eventually(async () => {
        const r = (await sluice.api('GET', '/v1/rollouts/lonely')).body;
        return r.phase === 'Paused' ? r : undefined;
      }, 15_000);
      expect(reached.lastAckNodes).toBe(1);
    } finally {
      await client.stop();
    }
  });

  it('decodes node metadata: sluice.flavour=envoy gets the socket listener whatever its user agent', async () => {
    const c = SotwClient.open(sluice.xdsPort, {
      node: { id: 'meta-envoy', cluster: 'edge', user_agent_name: 'grpc-node-js', metadata: struct({ 'sluice.flavour': 'envoy' }) },
    });
    raw.push(c);
    c.subscribe(TypeUrl.Listener, []);
    const listeners = await c.next(5000, TypeUrl.Listener);
    expect(listeners.resources.map((r) => r.name)).toEqual(['sluice_http']);
    expect(sluice.xds.fleet().find((n) => n.id === 'meta-envoy')?.group).toBe('envoy');
  });
});
