// Shadow traffic on the wire: a real Sluice runs a rollout of setMirror steps while an Envoy-
// flavoured node and a proxyless gRPC node are connected over the same kind of ADS stream. The
// Envoy sees the request mirror policy appear, change and disappear (each RouteConfiguration
// decoded strictly against Envoy's protos and ACKed, which moves the rollout on); the gRPC
// node is sent one new route when the rollout starts (the canary held at weight 0, so that its
// cluster is subscribed before it takes traffic), never a mirror, and ACKs all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { FakeNode } from '../support/envoy-client.js';
import { edsName, envoyNode, FakeEnvoy, routeConfigNames } from '../support/envoy-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';
import type { Json } from '../support/strict-decode.js';

type Obj = { [key: string]: Json };
const list = (v: Json | undefined): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

const mirrorTo = (numerator: number, denominator?: 'TEN_THOUSAND') => ({
  cluster: 'web-v1',
  request_mirror_policies: [{ cluster: 'web-v2', runtime_fraction: { default_value: { numerator, ...(denominator ? { denominator } : {}) } } }],
});

/** Clusters a held route names (its target, weighted entries and mirror policies) that the node does not hold. */
function danglingClusters(node: FakeEnvoy): string[] {
  const clusters = node.held(TypeUrl.Cluster);
  const out: string[] = [];
  for (const rc of node.held(TypeUrl.RouteConfiguration).values())
    for (const vh of list(rc.virtual_hosts))
      for (const r of list(vh.routes)) {
        const a = (r.route ?? {}) as Obj;
        const named = [a.cluster, ...list((a.weighted_clusters as Obj | undefined)?.clusters).map((c) => c.name), ...list(a.request_mirror_policies).map((p) => p.cluster)];
        for (const c of named) if (typeof c === 'string' && !clusters.has(c)) out.push(c);
      }
  return out;
}

describe.each(['sotw', 'delta'] as const)('mirroring over %s ADS', (mode) => {
  let sluice: TestSluice;
  let envoy: FakeEnvoy;
  let grpc: FakeEnvoy;
  const grpcNode: FakeNode = { id: `grpc-${mode}`, cluster: 'c', user_agent_name: 'gRPC Node', client_features: [] };

  const rollout = async () => (await sluice.api<RolloutState>('GET', '/v1/rollouts/web')).body;
  /** Waits until the rollout reached `step` and paused there (the fleet ACKed the step before). */
  const pausedAt = (step: number) => eventually(async () => {
    const r = await rollout();
    return r.phase === 'Paused' && r.step === step ? r : undefined;
  });
  const webRoute = () => {
    const vh = list(envoy.held(TypeUrl.RouteConfiguration).get('sluice_http')?.virtual_hosts).find((v) => v.name === 'web');
    return list(vh?.routes).at(-1)!.route as Obj;
  };
  const fleetNode = async (id: string) => ((await sluice.api('GET', '/v1/fleet')).body.nodes as Obj[]).find((n) => n.id === id)!;

  beforeAll(async () => {
    sluice = await startTestSluice();
    const web = {
      versions: { v1: { endpoints: [{ address: '10.0.0.11', port: 8000 }] }, v2: { endpoints: [{ address: '10.0.0.12', port: 8000 }] } },
      stable: 'v1',
    };
    expect((await sluice.api('PUT', '/v1/services/web', web)).status).toBe(201);
    // Changes reach the cache after a short debounce: sync the published service, not an earlier state.
    await sluice.reconciler.whenPublished(sluice.state.state.revision);
    envoy = new FakeEnvoy(sluice.xdsPort, envoyNode(`envoy-${mode}`), mode);
    await envoy.syncLikeEnvoy();
    // gRPC subscribes by name: xds:///web asks for listener "web", then its routes, clusters, endpoints.
    grpc = new FakeEnvoy(sluice.xdsPort, grpcNode, mode, { allowDeprecated: true });
    const listeners = await grpc.fetch(TypeUrl.Listener, ['web']);
    await grpc.fetch(TypeUrl.RouteConfiguration, [...listeners.values()].flatMap(routeConfigNames));
    const clusters = await grpc.fetch(TypeUrl.Cluster, ['web-v1']);
    await grpc.fetch(TypeUrl.ClusterLoadAssignment, [...clusters.values()].map(edsName));
  });

  afterAll(async () => {
    envoy?.close();
    grpc?.close();
    await sluice?.stop();
  });

  it('the Envoy node sees the mirror appear, change and disappear; the gRPC node sees no mirror and ACKs everything', async () => {
    const before = webRoute();
    expect(before).toEqual({ cluster: 'web-v1' });
    const grpcRoutes = structuredClone(grpc.held(TypeUrl.RouteConfiguration).get('web'));
    const grpcRdsBefore = ((await fleetNode(grpcNode.id)).types as Record<string, Obj>)[TypeUrl.RouteConfiguration]!;
    expect(grpcRdsBefore.ackedVersion).toBe(grpcRdsBefore.sentVersion);

    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'web',
      canary: 'v2',
      steps: [
        { setMirror: { percent: 100 } }, { pause: {} },
        { setMirror: { percent: 12.5 } }, { pause: {} },
        { setMirror: { percent: 0 } }, { pause: {} },
        { setMirror: { percent: 50 } }, { pause: {} },
      ],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    // The gRPC node: the canary joins its route at weight 0 (held), once.
    const held = (await grpc.awaitPush(TypeUrl.RouteConfiguration)).get('web')!;
    const heldRoute = list(list(held.virtual_hosts)[0]!.routes).at(-1)!.route as Obj;
    expect(heldRoute).toEqual({ weighted_clusters: { clusters: [{ name: 'web-v2', weight: 0 }, { name: 'web-v1', weight: 100 }] } });
    await grpc.fetch(TypeUrl.Cluster, ['web-v1', 'web-v2']);
    await grpc.fetch(TypeUrl.ClusterLoadAssignment, ['web-v1', 'web-v2']);

    // Appears: the plain stable route plus a policy copying every request to the canary.
    await envoy.awaitPush(TypeUrl.RouteConfiguration);
    expect(webRoute()).toEqual(mirrorTo(100));
    const shadow = await pausedAt(1);
    expect(shadow.history.find((h) => h.event === 'MirrorAcked')!.reason).toBe(
      "2 nodes of the service acknowledged mirroring 100% of traffic to v2 (Envoy nodes only; 1 of the service's 2 nodes is an Envoy)",
    );
    expect(shadow.lastAckEnvoyNodes).toBe(1);

    // Changes: 12.5% is 1250 per ten thousand.
    expect((await sluice.api('POST', '/v1/rollouts/web/promote', {})).status).toBe(200);
    await envoy.awaitPush(TypeUrl.RouteConfiguration);
    expect(webRoute()).toEqual(mirrorTo(1250, 'TEN_THOUSAND'));
    await pausedAt(3);

    // Disappears with setMirror 0: the route is the one from before the rollout.
    expect((await sluice.api('POST', '/v1/rollouts/web/promote', {})).status).toBe(200);
    await envoy.awaitPush(TypeUrl.RouteConfiguration);
    expect(webRoute()).toEqual(before);
    await pausedAt(5);

    // And with a rollback.
    expect((await sluice.api('POST', '/v1/rollouts/web/promote', {})).status).toBe(200);
    await envoy.awaitPush(TypeUrl.RouteConfiguration);
    expect(webRoute()).toEqual(mirrorTo(50));
    await pausedAt(7);
    const applied = envoy.awaitPush(TypeUrl.RouteConfiguration); // the node ACKs while the call waits for it
    const rolledBack = await sluice.api('POST', '/v1/rollouts/web/rollback?wait=ack&timeout=5s', { reason: 'enough shadowing' });
    await applied;
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body.fleet).toMatchObject({ acknowledged: true, nodeCount: 2 });
    expect(webRoute()).toEqual(before);
    expect((await rollout()).history.slice(-2).map((h) => h.event)).toEqual(['MirrorStopped', 'RolledBack']);

    // Every Envoy response decoded strictly (no deprecated field), and every cluster a route
    // named, mirrors included, was held; clusters never changed, so nothing was re-sent.
    expect(envoy.problems).toEqual([]);
    expect(danglingClusters(envoy)).toEqual([]);
    for (const t of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener]) expect(envoy.unread(t), t).toBe(0);

    // The gRPC node: not one response since the held route (the rollback keeps the canary held
    // too), never a mirror, everything ACKed.
    for (const t of Object.values(TypeUrl)) expect(grpc.unread(t), t).toBe(0);
    expect(grpc.held(TypeUrl.RouteConfiguration).get('web')).toEqual(held);
    expect(JSON.stringify(held)).not.toMatch(/mirror/);
    expect(JSON.stringify(grpcRoutes)).not.toEqual(JSON.stringify(held));
    expect(grpc.problems).toEqual([]);
    for (const id of [grpcNode.id, `envoy-${mode}`]) {
      const types = (await fleetNode(id)).types as Record<string, Obj>;
      for (const [t, status] of Object.entries(types)) {
        expect(status.ackedVersion, `${id} ${t}`).toBe(status.sentVersion);
        expect(status.lastNack, `${id} ${t}`).toBeNull();
      }
    }
    const grpcRdsAfter = ((await fleetNode(grpcNode.id)).types as Record<string, Obj>)[TypeUrl.RouteConfiguration]!;
    expect(grpcRdsAfter.ackedVersion).not.toBe(grpcRdsBefore.ackedVersion);
    expect(grpcRdsAfter.ackedVersion).toBe(grpcRdsAfter.sentVersion);
  });
});
