// xDS identity end to end: a real Sluice with mutual TLS and a policy file, real certificates made
// by openssl, real TLS gRPC streams. A client reads only the services its identity may read (state
// of the world and delta, wildcard and named), may claim only the node ids its identity may claim,
// and nothing without a certificate the CA signed; the policy file is reloaded and applies to
// connected nodes.
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { NodeInfo } from '../support/ads-client.js';
import { DeltaClient, fetch, perTypePath, SotwClient, struct } from '../support/ads-client.js';
import type { Issued } from '../support/certs.js';
import { TestCa } from '../support/certs.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';
import type { LoggedSluice } from './support.js';
import { clientCreds, replaceFile, startLoggedSluice } from './support.js';

const SHOP = 'spiffe://example.org/ns/shop/sa/web';
const POLICY = `
rules:
  - identity: "spiffe://example.org/ns/shop/*"
    nodeIds: ["shop-*"]
    services: [echo]
  - identity: ops-admin
    nodeIds: ["*"]
    services: ["*"]
`;

let dir: string;
let ca: TestCa;
let server: Issued;
const who: Record<'shop' | 'admin' | 'stranger' | 'foreignCa', Issued> = {} as never;
const streams: (SotwClient | DeltaClient)[] = [];

beforeAll(() => {
  dir = tempDir('sluice-xds-access-');
  ca = new TestCa(dir);
  server = ca.server();
  who.shop = ca.issue('shop', { uris: [SHOP], cn: 'shop-web' });
  who.admin = ca.issue('admin', { cn: 'ops-admin' });
  who.stranger = ca.issue('stranger', { cn: 'stranger' });
  // The same SPIFFE id, signed by a CA Sluice does not trust.
  who.foreignCa = new TestCa(dir, 'other-ca').issue('forged', { uris: [SHOP] });
});

afterAll(() => {
  for (const s of streams) s.cancel();
});

async function startWithPolicy(policy: string, file = 'policy.yaml'): Promise<{ sluice: LoggedSluice; policyFile: string }> {
  const policyFile = path.join(dir, file);
  fs.writeFileSync(policyFile, policy);
  const sluice = await startLoggedSluice({ xdsTlsCert: server.cert, xdsTlsKey: server.key, xdsTlsCa: ca.cert, xdsPolicy: policyFile });
  for (const [name, port] of [['echo', 7000], ['pay', 7100], ['other', 7200]] as const)
    expect((await sluice.api('PUT', `/v1/services/${name}`, serviceOf({ v1: port, v2: port + 1 }))).status).toBe(201);
  return { sluice, policyFile };
}

function sotw(sluice: LoggedSluice, as: Issued | undefined, node: NodeInfo, pathOverride?: string): SotwClient {
  const c = SotwClient.open(sluice.xdsPort, { node, credentials: clientCreds(ca.pem, as), ...(pathOverride ? { path: pathOverride } : {}) });
  streams.push(c);
  return c;
}

function delta(sluice: LoggedSluice, as: Issued, node: NodeInfo): DeltaClient {
  const c = DeltaClient.open(sluice.xdsPort, { node, credentials: clientCreds(ca.pem, as) });
  streams.push(c);
  return c;
}

const envoy = (id: string): NodeInfo => ({ id, cluster: 'edge', user_agent_name: 'envoy' });
const grpcNode = (id: string): NodeInfo => ({ id, cluster: 'app', user_agent_name: 'grpc-node-js' });
const virtualHosts = (r: { resources: { value: Record<string, unknown> }[] }) =>
  (r.resources[0]!.value.virtual_hosts as { name: string }[]).map((v) => v.name).sort();

describe('an mTLS client whose identity may read only echo', () => {
  let sluice: LoggedSluice;
  beforeAll(async () => {
    ({ sluice } = await startWithPolicy(POLICY));
  });
  afterAll(async () => sluice?.stop());

  it('gets only echo over state of the world: wildcard clusters and listeners, routes, named endpoints', async () => {
    const c = sotw(sluice, who.shop, envoy('shop-edge-1'));
    c.subscribe(TypeUrl.Cluster, []);
    const clusters = await c.next(5000, TypeUrl.Cluster);
    expect(clusters.names.sort()).toEqual(['echo-v1', 'echo-v2']);
    c.ack(clusters);
    c.subscribe(TypeUrl.ClusterLoadAssignment, ['echo-v1', 'pay-v1', 'other-v2']);
    expect((await c.next(5000, TypeUrl.ClusterLoadAssignment)).names).toEqual(['echo-v1']);
    c.subscribe(TypeUrl.Listener, []);
    const listeners = await c.next(5000, TypeUrl.Listener);
    expect(listeners.names).toEqual(['sluice_http']);
    c.subscribe(TypeUrl.RouteConfiguration, ['sluice_http']);
    expect(virtualHosts(await c.next(5000, TypeUrl.RouteConfiguration))).toEqual(['echo']);
  });

  it('gets nothing of another service it names (a proxyless gRPC client, state of the world)', async () => {
    const c = sotw(sluice, who.shop, grpcNode('shop-app-1'));
    c.subscribe(TypeUrl.Listener, ['echo', 'pay', 'other']);
    expect((await c.next(5000, TypeUrl.Listener)).names).toEqual(['echo']);
    c.subscribe(TypeUrl.Cluster, ['pay-v1', 'pay-v2']);
    expect((await c.next(5000, TypeUrl.Cluster)).names).toEqual([]);
    c.subscribe(TypeUrl.RouteConfiguration, ['pay']);
    expect((await c.next(5000, TypeUrl.RouteConfiguration)).names).toEqual([]);
  });

  it('gets only echo over delta xDS, wildcard and named', async () => {
    const e = delta(sluice, who.shop, envoy('shop-edge-2'));
    e.subscribe(TypeUrl.Cluster, []);
    expect((await e.next(5000, TypeUrl.Cluster)).names.sort()).toEqual(['echo-v1', 'echo-v2']);
    const g = delta(sluice, who.shop, grpcNode('shop-app-2'));
    g.subscribe(TypeUrl.Listener, ['pay', 'echo', 'other']);
    expect((await g.next(5000, TypeUrl.Listener)).names).toEqual(['echo']);
    g.subscribe(TypeUrl.Cluster, ['pay-v1']);
    // Delta tells it that name does not exist (for this node), and sends nothing of it.
    expect(await g.next(5000, TypeUrl.Cluster)).toMatchObject({ names: [], removed_resources: ['pay-v1'] });
    // A later change of a service it may not read sends it nothing; a node that may read it gets the change.
    g.subscribe(TypeUrl.ClusterLoadAssignment, ['pay-v1']);
    expect(await g.next(5000, TypeUrl.ClusterLoadAssignment)).toMatchObject({ names: [], removed_resources: ['pay-v1'] });
    const admin = delta(sluice, who.admin, grpcNode('admin-app'));
    admin.subscribe(TypeUrl.ClusterLoadAssignment, ['pay-v1']);
    expect((await admin.next(5000, TypeUrl.ClusterLoadAssignment)).names).toEqual(['pay-v1']);
    expect((await sluice.api('PUT', '/v1/services/pay', serviceOf({ v1: 7150, v2: 7101 }))).status).toBe(200);
    expect((await admin.next(5000, TypeUrl.ClusterLoadAssignment)).names).toEqual(['pay-v1']);
    await g.expectNothing(300);
  });

  it('is narrowed further, not widened, by the services its node asks for', async () => {
    const c = sotw(sluice, who.shop, { ...envoy('shop-edge-3'), metadata: struct({ 'sluice.services': ['echo', 'pay'] }) });
    c.subscribe(TypeUrl.Cluster, []);
    expect((await c.next(5000, TypeUrl.Cluster)).names.sort()).toEqual(['echo-v1', 'echo-v2']);
  });

  it('Fetch gives it nothing of another service', async () => {
    const r = await fetch(sluice.xdsPort, perTypePath('cluster', 'Clusters', 'Fetch'), { node: envoy('shop-edge-4'), resource_names: [] }, clientCreds(ca.pem, who.shop));
    expect(r.names.filter((n) => !n.startsWith('echo-'))).toEqual([]);
  });

  it('an identity with every service (a CN identity) reads them all', async () => {
    const c = sotw(sluice, who.admin, envoy('anything-at-all'));
    c.subscribe(TypeUrl.Cluster, []);
    expect((await c.next(5000, TypeUrl.Cluster)).names.sort()).toEqual(['echo-v1', 'echo-v2', 'other-v1', 'other-v2', 'pay-v1', 'pay-v2']);
  });
});

describe('refused clients', () => {
  let sluice: LoggedSluice;
  beforeAll(async () => {
    ({ sluice } = await startWithPolicy(POLICY, 'refusals.yaml'));
  });
  afterAll(async () => sluice?.stop());

  it('a client claiming a node id its identity may not claim: PERMISSION_DENIED naming both, nothing sent', async () => {
    for (const c of [sotw(sluice, who.shop, envoy('pay-1')), delta(sluice, who.shop, envoy('pay-1'))]) {
      c.subscribe(TypeUrl.Cluster, []);
      expect(await c.statusWithin()).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: `identity "${SHOP}" may not claim node id "pay-1"` });
      expect(c.received).toEqual([]);
    }
    expect(sluice.xds.fleet().map((n) => n.id)).not.toContain('pay-1');
    await expect(
      fetch(sluice.xdsPort, perTypePath('cluster', 'Clusters', 'Fetch'), { node: envoy('pay-1'), resource_names: [] }, clientCreds(ca.pem, who.shop)),
    ).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(sluice.lines.some((l) => l.msg === 'xds stream refused' && String(l.problem).includes('"pay-1"'))).toBe(true);
  });

  it('an identity that matches no rule: PERMISSION_DENIED', async () => {
    const c = sotw(sluice, who.stranger, envoy('shop-1'));
    c.subscribe(TypeUrl.Cluster, []);
    expect(await c.statusWithin()).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'identity "stranger" matches no rule of the xDS policy' });
  });

  it('a client without a certificate, with one from another CA, or in plaintext: refused at the handshake, nothing sent', async () => {
    const attempts = [
      SotwClient.open(sluice.xdsPort, { node: envoy('shop-1'), credentials: clientCreds(ca.pem) }),
      SotwClient.open(sluice.xdsPort, { node: envoy('shop-1'), credentials: clientCreds(ca.pem, who.foreignCa) }),
      SotwClient.open(sluice.xdsPort, { node: envoy('shop-1') }),
    ];
    streams.push(...attempts);
    for (const c of attempts) {
      c.subscribe(TypeUrl.Cluster, []);
      expect((await c.statusWithin(10_000)).code).toBe(grpc.status.UNAVAILABLE);
      expect(c.received).toEqual([]);
    }
    expect(sluice.xds.connectedStreams).toBe(0);
  });
});

describe('the policy file', () => {
  it('refuses to start when invalid, or without mutual TLS', async () => {
    const bad = path.join(dir, 'bad-at-start.yaml');
    fs.writeFileSync(bad, 'rules: [{identity: a, nodeIds: ["*"], services: ["not a name"]}]');
    await expect(startLoggedSluice({ xdsTlsCert: server.cert, xdsTlsKey: server.key, xdsTlsCa: ca.cert, xdsPolicy: bad })).rejects.toThrow(
      `--xds-policy ${bad}: rules[0].services[0]: must be a service name or "*"`,
    );
    expect(() => parseConfig(['--xds-tls-cert', server.cert, '--xds-tls-key', server.key, '--xds-policy', bad], {})).toThrow(/--xds-policy needs mutual TLS/);
  });

  it('is reloaded on change: nodes whose access changed reconnect under it; a bad file keeps the last good one', async () => {
    const { sluice, policyFile } = await startWithPolicy(POLICY, 'reload.yaml');
    try {
      const shop = sotw(sluice, who.shop, envoy('shop-edge-9'));
      shop.subscribe(TypeUrl.Cluster, []);
      const first = await shop.next(5000, TypeUrl.Cluster);
      expect(first.names.sort()).toEqual(['echo-v1', 'echo-v2']);
      shop.ack(first);
      const admin = sotw(sluice, who.admin, envoy('admin-1'));
      admin.subscribe(TypeUrl.Cluster, []);
      admin.ack(await admin.next(5000, TypeUrl.Cluster));

      // Shop may now read pay too: its stream is ended so that it reconnects into the new scope.
      replaceFile(policyFile, POLICY.replace('services: [echo]', 'services: [echo, pay]'));
      expect(await shop.statusWithin(10_000)).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'the xDS access policy changed what this node may read: reconnect' });
      const again = sotw(sluice, who.shop, envoy('shop-edge-9'));
      again.subscribe(TypeUrl.Cluster, []);
      expect((await again.next(5000, TypeUrl.Cluster)).names.sort()).toEqual(['echo-v1', 'echo-v2', 'pay-v1', 'pay-v2']);

      // A file that does not parse: the last good policy stays, the log says why, nobody is cut off.
      replaceFile(policyFile, 'rules: [{identity: "*", nodeIds: ["*"], services: ["*"], extra: 1}]');
      const rejected = await eventually(() => sluice.lines.find((l) => l.msg === 'xDS policy not reloaded: keeping the last good policy'), 10_000);
      expect(rejected).toMatchObject({ level: 50, file: policyFile, problem: 'rules[0]: Unrecognized key: "extra"' });
      const later = sotw(sluice, who.stranger, envoy('shop-1'));
      later.subscribe(TypeUrl.Cluster, []);
      expect((await later.statusWithin()).code).toBe(grpc.status.PERMISSION_DENIED);

      // Shop's rule removed: its connected stream is refused; the admin, whose access did not change, stays.
      replaceFile(policyFile, 'rules:\n  - identity: ops-admin\n    nodeIds: ["*"]\n    services: ["*"]\n');
      expect(await again.statusWithin(10_000)).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: `identity "${SHOP}" matches no rule of the xDS policy` });
      expect((await sluice.api('PUT', '/v1/services/other', serviceOf({ v1: 7200, v2: 7201, v3: 7202 }))).status).toBe(200);
      expect((await admin.next(5000, TypeUrl.Cluster)).names).toContain('other-v3'); // still served on its first stream
      expect(sluice.lines.filter((l) => l.msg === 'xDS policy reloaded').length).toBeGreaterThanOrEqual(2);
    } finally {
      await sluice.stop();
    }
  });
});

describe('TLS without a CA', () => {
  it('warns at start-up that xDS clients are not authenticated', async () => {
    const sluice = await startLoggedSluice({ xdsTlsCert: server.cert, xdsTlsKey: server.key });
    try {
      const warning = sluice.lines.find((l) => l.level === 40 && String(l.msg).includes('clients are NOT authenticated'));
      expect(warning?.msg).toMatch(/reads every service and can send load reports/);
      // As it says: a client with no certificate at all reads everything.
      expect((await sluice.api('PUT', '/v1/services/pay', serviceOf({ v1: 7100 }))).status).toBe(201);
      await eventually(() => sluice.xds.cache.resources('envoy', TypeUrl.Cluster).has('pay-v1'));
      const c = SotwClient.open(sluice.xdsPort, { node: envoy('anyone'), credentials: clientCreds(ca.pem) });
      streams.push(c);
      c.subscribe(TypeUrl.Cluster, []);
      expect((await c.next(5000, TypeUrl.Cluster)).names).toEqual(['pay-v1']);
    } finally {
      await sluice.stop();
    }
  });
});
