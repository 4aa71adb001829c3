// Forged load reports do not move analysis. A real Sluice with mutual TLS and a policy; a canary
// under analysis; the node that holds the canary's clusters reports healthy traffic, while other
// authenticated clients send load reports (LRS) and Envoy metrics full of canary errors: claiming
// that node's id, claiming their own node (never sent the canary's clusters), or claiming that node
// from an identity the policy lets claim any node id but that does not hold the node's stream.
// Analysis keeps passing; the same errors from the node itself roll the canary back.
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { SotwClient } from '../support/ads-client.js';
import type { Issued } from '../support/certs.js';
import { TestCa } from '../support/certs.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';
import type { LoggedSluice, TelemetryStream } from './support.js';
import { clientCreds, envoyMetricsStream, lrsStream, startLoggedSluice } from './support.js';

const PAY = 'spiffe://example.org/ns/pay/sa/api';
const SHOP = 'spiffe://example.org/ns/shop/sa/web';
const POLICY = `
rules:
  - { identity: "spiffe://example.org/ns/pay/*",  nodeIds: ["pay-*"],  services: [pay] }
  - { identity: "spiffe://example.org/ns/shop/*", nodeIds: ["shop-*"], services: [echo] }
  - { identity: ops-admin, nodeIds: ["*"], services: ["*"] }
`;

let ca: TestCa;
let sluice: LoggedSluice;
const who = {} as Record<'pay' | 'shop' | 'admin', Issued>;
const closers: (() => void)[] = [];
const timers: NodeJS.Timeout[] = [];

const rollout = async () => (await sluice.api<RolloutState>('GET', '/v1/rollouts/pay')).body;
const creds = (as: Issued) => clientCreds(ca.pem, as);

/** An xDS node that takes every cluster it may read; returns their names. */
async function connect(as: Issued, id: string): Promise<string[]> {
  const c = SotwClient.open(sluice.xdsPort, { node: { id, cluster: 'edge', user_agent_name: 'envoy' }, credentials: creds(as) });
  closers.push(() => c.cancel());
  c.subscribe(TypeUrl.Cluster, []);
  const r = await c.next(5000, TypeUrl.Cluster);
  c.ack(r);
  return r.names.sort();
}

/** Sends `clusters` on `stream` every 250 ms until the suite ends. */
function every250ms(stream: TelemetryStream, clusters: { name: string; ok: number; errors: number }[]): void {
  closers.push(() => stream.close());
  stream.send(clusters);
  const t = setInterval(() => stream.send(clusters), 250);
  timers.push(t);
}

beforeAll(async () => {
  const dir = tempDir('sluice-forged-');
  ca = new TestCa(dir);
  const server = ca.server();
  who.pay = ca.issue('pay', { uris: [PAY] });
  who.shop = ca.issue('shop', { uris: [SHOP] });
  who.admin = ca.issue('admin', { cn: 'ops-admin' });
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  sluice = await startLoggedSluice({ xdsTlsCert: server.cert, xdsTlsKey: server.key, xdsTlsCa: ca.cert, xdsPolicy: policy, lrsInterval: '1s' });
  for (const [name, port] of [['pay', 7100], ['echo', 7000]] as const)
    expect((await sluice.api('PUT', `/v1/services/${name}`, serviceOf({ v1: port, v2: port + 1 }))).status).toBe(201);
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const close of closers) close();
  await sluice?.stop();
});

describe('forged load reports', () => {
  it('do not move analysis; the same errors from the node that holds the canary roll it back', async () => {
    expect(await connect(who.pay, 'pay-1')).toEqual(['pay-v1', 'pay-v2']);
    expect(await connect(who.shop, 'shop-1')).toEqual(['echo-v1', 'echo-v2']);
    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'pay',
      canary: 'v2',
      steps: [{ setWeight: 50 }, { pause: {} }],
      analysis: { interval: '1s', minRequests: 50, inconclusiveLimit: 100, metrics: [{ name: 'success', successRate: { min: 0.95 } }] },
    });
    expect(created.status).toBe(201);
    // The node that holds pay's clusters reports healthy traffic.
    const honest = lrsStream(sluice.xdsPort, creds(who.pay), { id: 'pay-1', cluster: 'edge' });
    every250ms(honest, [{ name: 'pay-v1', ok: 50, errors: 0 }, { name: 'pay-v2', ok: 50, errors: 0 }]);
    await eventually(async () => (await rollout()).analysis?.measurements.some((m) => m.phase === 'Successful'), 15_000, 100);

    const forgedErrors = [{ name: 'pay-v2', ok: 0, errors: 1000 }];
    const forgedSince = new Date().toISOString();
    const droppedBefore = { ...sluice.telemetry.dropped };
    // 1. Claiming the pay node's id from the shop identity: refused, LRS and Envoy metrics alike.
    const claimLrs = lrsStream(sluice.xdsPort, creds(who.shop), { id: 'pay-1', cluster: 'edge' });
    const claimMetrics = envoyMetricsStream(sluice.xdsPort, creds(who.shop), { id: 'pay-1', cluster: 'edge' });
    every250ms(claimLrs, forgedErrors);
    every250ms(claimMetrics, forgedErrors);
    const refusal = `identity "${SHOP}" may not claim node id "pay-1"`;
    expect(await claimLrs.status).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: refusal });
    expect(await claimMetrics.status).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: refusal });
    // 2. As its own node, which was never sent pay's clusters: the stream is served, the reports dropped.
    const ownNode = lrsStream(sluice.xdsPort, creds(who.shop), { id: 'shop-1', cluster: 'edge' });
    every250ms(ownNode, forgedErrors);
    await ownNode.answered;
    // 3. As the pay node, from an identity that may claim any node id but does not hold that node's
    //    stream: dropped too, LRS and Envoy metrics alike (the metrics' first flush is a baseline).
    const admin = lrsStream(sluice.xdsPort, creds(who.admin), { id: 'pay-1', cluster: 'edge' });
    const adminMetrics = envoyMetricsStream(sluice.xdsPort, creds(who.admin), { id: 'pay-1', cluster: 'edge' });
    every250ms(admin, forgedErrors);
    every250ms(adminMetrics, forgedErrors);
    await admin.answered;

    // Three more windows measured while the forgers send: each passes, and the rollout stands.
    const later = await eventually(async () => {
      const r = await rollout();
      const since = r.analysis?.measurements.filter((m) => m.from >= forgedSince) ?? [];
      return since.length >= 3 || r.phase === 'RolledBack' ? r : undefined;
    }, 20_000, 100);
    expect(later.phase).not.toBe('RolledBack');
    const measured = later.analysis!.measurements.filter((m) => m.from >= forgedSince);
    expect(measured.map((m) => m.phase)).toEqual(measured.map(() => 'Successful'));
    expect(measured.map((m) => m.metrics[0]!.value)).toEqual(measured.map(() => 1));
    expect(sluice.telemetry.windows.query('pay-v2', Date.parse(forgedSince), Date.now()).errors).toBe(0);
    expect(sluice.telemetry.dropped.node_refused).toBeGreaterThan(droppedBefore.node_refused);
    expect(sluice.telemetry.dropped.cluster_not_sent).toBeGreaterThan(droppedBefore.cluster_not_sent + 4);
    expect(await Promise.race([ownNode.status, admin.status, new Promise((r) => setTimeout(() => r('open'), 100))])).toBe('open');

    // Control: the same errors from the node that holds the canary's clusters are taken, and
    // analysis rolls the canary back, so the reports above were refused, not ignored by chance.
    const truthful = lrsStream(sluice.xdsPort, creds(who.pay), { id: 'pay-1', cluster: 'edge' });
    every250ms(truthful, forgedErrors);
    const rolledBack = await eventually(async () => {
      const r = await rollout();
      return r.phase === 'RolledBack' ? r : undefined;
    }, 20_000, 100);
    expect(rolledBack.history.at(-1)).toMatchObject({ event: 'RolledBack', by: 'analysis' });
  });
});
