// Per-service retries and timeouts reach real gRPC clients, and they act on them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnPythonXdsClient, spawnXdsClient } from '../../src/demo/xds-client.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { hasPythonGrpc } from '../support/python.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';

const implementations = [
  { name: 'grpc-js-xds', spawn: spawnXdsClient, available: true },
  { name: 'C-core (python3-grpcio)', spawn: spawnPythonXdsClient, available: hasPythonGrpc() },
] as const;

for (const impl of implementations) {
  describe.runIf(impl.available)(`route policy with ${impl.name}`, () => {
    let sluice: TestSluice;
    let flaky: Backend;
    let client: XdsClient;

    beforeAll(async () => {
      sluice = await startTestSluice();
      flaky = await startBackend({ version: 'v1', errorRate: 0.5 });
      client = await impl.spawn({ nodeId: 'policy', xdsPort: sluice.xdsPort });
    });
    afterAll(async () => {
      await client?.stop();
      await flaky?.stop();
      await sluice?.stop();
    });

    const declare = async (extra: object) =>
      expect(
        (await sluice.api('PUT', '/v1/services/flaky', { versions: { v1: { endpoints: [{ address: '127.0.0.1', port: flaky.port }] } }, stable: 'v1', ...extra })).status,
      ).toBeLessThan(300);

    it('retries UNAVAILABLE as configured, and the client accepts timeout and retry policy', async () => {
      await declare({});
      await eventually(async () => (await client.call('flaky', 5)).versions.v1 !== undefined, 15_000, 100);
      const without = await client.call('flaky', 200);
      await declare({ timeout: '2s', retries: { attempts: 5, on: ['unavailable', '5xx'] } });
      // Wait until the client has ACKed the new routes, then measure.
      await eventually(async () => {
        const node = (await sluice.api('GET', '/v1/fleet')).body.nodes[0];
        const rds = node?.types[TypeUrl.RouteConfiguration];
        return rds && rds.ackedVersion === rds.sentVersion && (await sluice.xds.awaitOwner('flaky', { timeoutMs: 1000 })).streams.every((n) => n.state === 'acked');
      });
      const failed = (r: typeof without) => Object.values(r.errors).reduce((a, b) => a + b, 0);
      expect(failed(without)).toBeGreaterThan(60);
      // An ACK says the client accepted the routes; C-core applies them to new calls a moment
      // later (its resolver hands the config to the channel asynchronously; on a loaded machine
      // a batch can start on the old config). So first wait for a short batch that ran on the new
      // policy — a client without retries fails about 25 of 50 calls, fewer than 10 is 4σ away —
      // then measure. A client that ignored the policy never gets past the wait.
      await eventually(async () => failed(await client.call('flaky', 50)) < 10, 45_000, 0);
      const withRetries = await client.call('flaky', 200);
      console.log(`${impl.name}: 50% failing backend, failures of 200 calls without retries ${failed(without)}, with 5 attempts ${failed(withRetries)}`);
      // gRPC clients make at most 5 attempts and back off between them: a several-fold drop.
      expect(failed(withRetries)).toBeLessThan(failed(without) / 2.5);
      const node = (await sluice.api('GET', '/v1/fleet')).body.nodes[0];
      expect(node.types[TypeUrl.RouteConfiguration].lastNack).toBeNull();
    }, 90_000);
  });
}
