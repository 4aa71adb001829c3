// End to end with real proxyless gRPC clients of two implementations (grpc-js-xds and
// C-core through Debian's python3-grpcio) calling real gRPC backends.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient, XdsClientOptions } from '../../src/demo/xds-client.js';
import { PYTHON, spawnPythonXdsClient, spawnXdsClient } from '../../src/demo/xds-client.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice, serviceOf } from '../support/sluice.js';
import { hasPythonGrpc } from '../support/python.js';

const implementations: { name: string; spawn: (o: XdsClientOptions) => Promise<XdsClient>; agent: RegExp; available: boolean }[] = [
  { name: 'grpc-js-xds', spawn: spawnXdsClient, agent: /gRPC Node/, available: true },
  { name: 'C-core (python3-grpcio)', spawn: spawnPythonXdsClient, agent: /gRPC/, available: hasPythonGrpc() },
];

for (const impl of implementations) {
  describe.runIf(impl.available)(`${impl.name} clients follow the stable version`, () => {
    let sluice: TestSluice;
    let v1: Backend;
    let v2: Backend;
    const clients: XdsClient[] = [];

    const service = (stable: string) => serviceOf({ v1: v1.port, v2: v2.port }, stable);

    beforeAll(async () => {
      sluice = await startTestSluice();
      [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
      clients.push(
        ...(await Promise.all(['node-a', 'node-b'].map((nodeId) => impl.spawn({ nodeId, xdsPort: sluice.xdsPort })))),
      );
    });

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.stop()));
      await Promise.all([v1?.stop(), v2?.stop()]);
      await sluice?.stop();
    });

    it('reaches the stable version, then the new stable within a second', async () => {
      expect((await sluice.api('PUT', '/v1/services/echo', service('v1'))).status).toBe(201);
      for (const c of clients) {
        // The first call may race the client's first xDS fetch; retry it rather than waitForReady.
        await eventually(async () => (await c.call('echo', 1)).versions.v1 === 1, 15_000, 100);
        expect((await c.call('echo', 20)).versions).toEqual({ v1: 20 });
      }

      const changedAt = Date.now();
      expect((await sluice.api('PUT', '/v1/services/echo', service('v2'))).status).toBe(200);
      const switchedMs = await Promise.all(
        clients.map((c) =>
          eventually(async () => ((await c.call('echo', 5)).versions.v2 === 5 ? Date.now() - changedAt : undefined), 5000, 20),
        ),
      );
      console.log(`${impl.name}: stable change reached every client in ${Math.max(...switchedMs)} ms`);
      expect(Math.max(...switchedMs)).toBeLessThan(1000);
      for (const c of clients) expect((await c.call('echo', 20)).versions).toEqual({ v2: 20 });
    });

    it('lists both nodes in the fleet, every type ACKed and none rejected', async () => {
      const { status, body } = await sluice.api('GET', '/v1/fleet');
      expect(status).toBe(200);
      expect(body.nodes.map((n: { id: string }) => n.id)).toEqual(['node-a', 'node-b']);
      for (const node of body.nodes) {
        expect(node.userAgent).toMatch(impl.agent);
        expect(node.group).toBe('grpc');
        for (const t of [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]) {
          expect(node.types[t], t).toBeDefined();
          expect(node.types[t].ackedVersion).toBe(node.types[t].sentVersion);
          expect(node.types[t].lastNack).toBeNull();
        }
      }
    });
  });
}

// CI installs python3-grpcio (scripts/install-test-deps.sh); there the C-core suite must not be skipped.
it.runIf(!!process.env.CI)('python3-grpcio is installed where CI runs', () => {
  expect(fs.existsSync(PYTHON) && hasPythonGrpc()).toBe(true);
});
