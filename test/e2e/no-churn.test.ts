// A rollback without cluster churn, with real proxyless clients of both implementations: after
// the rollback every call reaches stable, and the node sends no CDS or EDS request for it (the
// canary stays in its route at weight 0); the next rollout of the same canary needs none either.
// Requests are counted by the server, per node and type (GET /v1/fleet: types[t].requests).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient, XdsClientOptions } from '../../src/demo/xds-client.js';
import { spawnPythonXdsClient, spawnXdsClient } from '../../src/demo/xds-client.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';
import { hasPythonGrpc } from '../support/python.js';

const implementations: { name: string; spawn: (o: XdsClientOptions) => Promise<XdsClient>; available: boolean }[] = [
  { name: 'grpc-js-xds', spawn: spawnXdsClient, available: true },
  { name: 'C-core (python3-grpcio)', spawn: spawnPythonXdsClient, available: hasPythonGrpc() },
];

const TYPES = { LDS: TypeUrl.Listener, RDS: TypeUrl.RouteConfiguration, CDS: TypeUrl.Cluster, EDS: TypeUrl.ClusterLoadAssignment };
type Counts = Record<keyof typeof TYPES, number>;

for (const impl of implementations) {
  describe.runIf(impl.available)(`rollback without re-subscription: ${impl.name}`, () => {
    let sluice: TestSluice;
    let v1: Backend;
    let v2: Backend;
    let client: XdsClient;
    const nodeId = 'churn-1';

    /** Requests the server received from the node, per type, and whether a type is NACKed. */
    async function requests(): Promise<Counts & { nacked: string[] }> {
      const { body } = await sluice.api('GET', '/v1/fleet');
      const node = body.nodes.find((n: { id: string }) => n.id === nodeId);
      const out = { nacked: [] as string[] } as Counts & { nacked: string[] };
      for (const [k, t] of Object.entries(TYPES) as [keyof typeof TYPES, string][]) {
        out[k] = node.types[t]?.requests ?? 0;
        if (node.types[t]?.lastNack) out.nacked.push(`${k}: ${node.types[t].lastNack.message}`);
      }
      return out;
    }

    /** Waits until the node has ACKed everything it was sent and sent nothing for a while. */
    async function settled(): Promise<Counts & { nacked: string[] }> {
      let last = '';
      let since = Date.now();
      return eventually(async () => {
        const { body } = await sluice.api('GET', '/v1/fleet');
        const node = body.nodes.find((n: { id: string }) => n.id === nodeId);
        const synced = Object.values(TYPES).every((t) => node.types[t] && node.types[t].ackedVersion === node.types[t].sentVersion);
        const now = JSON.stringify(await requests());
        if (now !== last) [last, since] = [now, Date.now()];
        return synced && Date.now() - since > 500 ? requests() : undefined;
      }, 15_000, 50);
    }

    const rollout = () =>
      sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 30 }, { pause: {} }] });
    const paused = () =>
      eventually(async () => ((await sluice.api('GET', '/v1/rollouts/echo')).body.phase === 'Paused' ? true : undefined), 15_000);

    beforeAll(async () => {
      sluice = await startTestSluice();
      [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
      expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
      client = await impl.spawn({ nodeId, xdsPort: sluice.xdsPort });
      await eventually(async () => (await client.call('echo', 1)).versions.v1 === 1, 15_000, 100);
    });

    afterAll(async () => {
      await client?.stop();
      await Promise.all([v1?.stop(), v2?.stop()]);
      await sluice?.stop();
    });

    it('the first rollout subscribes the canary; the rollback sends one route and no CDS or EDS request follows', async () => {
      const before = await settled();
      expect((await rollout()).status).toBe(201);
      await paused();
      const during = await settled();
      // The canary's cluster was fetched: at least one CDS and one EDS request (subscription + ACK).
      expect(during.CDS).toBeGreaterThan(before.CDS);
      expect(during.EDS).toBeGreaterThan(before.EDS);
      const split = await client.call('echo', 200);
      expect(split.versions.v2 ?? 0).toBeGreaterThan(0);

      const rb = await sluice.api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'no churn' });
      expect(rb.status).toBe(200);
      expect(rb.body.fleet.acknowledged).toBe(true);
      await eventually(async () => ((await client.call('echo', 50)).versions.v1 === 50 ? true : undefined), 5000, 20);
      expect((await client.call('echo', 200)).versions).toEqual({ v1: 200 });
      // Header cohorts are gone with the rollback.
      expect((await client.call('echo', 20, { metadata: { 'x-canary': 'true' } })).versions).toEqual({ v1: 20 });

      const after = await settled();
      console.log(`${impl.name}: requests per type before ${JSON.stringify(before)}, rollout ${JSON.stringify(during)}, rollback ${JSON.stringify(after)}`);
      expect(after.nacked).toEqual([]);
      expect(after.RDS).toBe(during.RDS + 1); // the ACK of the one route configuration
      expect(after.LDS).toBe(during.LDS);
      expect(after.CDS).toBe(during.CDS);
      expect(after.EDS).toBe(during.EDS);
    });

    it('the next rollout of the same canary re-subscribes nothing either', async () => {
      const before = await settled();
      expect((await rollout()).status).toBe(201);
      await paused();
      const split = await client.call('echo', 200);
      expect(split.versions.v2 ?? 0).toBeGreaterThan(0);
      const after = await settled();
      expect(after.nacked).toEqual([]);
      expect(after.CDS).toBe(before.CDS);
      expect(after.EDS).toBe(before.EDS);
    });
  });
}
