// A rollout end to end: real Sluice, real gRPC backends, real proxyless clients of both
// implementations; the measured split, header cohorts, rollback time, promotion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { CallResult, XdsClient, XdsClientOptions } from '../../src/demo/xds-client.js';
import { spawnPythonXdsClient, spawnXdsClient } from '../../src/demo/xds-client.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice, serviceOf } from '../support/sluice.js';
import { hasPythonGrpc } from '../support/python.js';
import { routesApplied } from '../support/applied.js';

const implementations = [
  { name: 'grpc-js-xds', spawn: spawnXdsClient, available: true },
  { name: 'C-core (python3-grpcio)', spawn: spawnPythonXdsClient, available: hasPythonGrpc() },
] as const;

function share(results: CallResult[], version: string): number {
  let hits = 0;
  let total = 0;
  for (const r of results)
    for (const [v, n] of Object.entries(r.versions)) {
      total += n;
      if (v === version) hits += n;
    }
  return total === 0 ? 0 : hits / total;
}

for (const impl of implementations) {
  describe.runIf(impl.available)(`rollout with ${impl.name} clients`, () => {
    let sluice: TestSluice;
    let v1: Backend;
    let v2: Backend;
    const clients: XdsClient[] = [];

    beforeAll(async () => {
      sluice = await startTestSluice();
      [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
      expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
      const opts: Omit<XdsClientOptions, 'nodeId'> = { xdsPort: sluice.xdsPort };
      clients.push(...(await Promise.all(['r-1', 'r-2'].map((nodeId) => impl.spawn({ nodeId, ...opts })))));
      for (const c of clients) await eventually(async () => (await c.call('echo', 1)).versions.v1 === 1, 15_000, 100);
    });

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.stop()));
      await Promise.all([v1?.stop(), v2?.stop()]);
      await sluice?.stop();
    });

    it('moves 20% to the canary once the fleet ACKs, with header cohorts at 100% canary', async () => {
      const created = await sluice.api('POST', '/v1/rollouts', {
        service: 'echo',
        canary: 'v2',
        steps: [{ setWeight: 20 }, { pause: {} }, { setWeight: 50 }, { pause: { duration: '1h' } }],
        headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
      });
      expect(created.status).toBe(201);
      expect(created.body.weights).toEqual({ v1: 80, v2: 20 });
      // The weight step completes only after every node ACKed it; then the indefinite pause holds.
      const paused = await eventually(async () => {
        const r = await sluice.api('GET', '/v1/rollouts/echo');
        return r.body.phase === 'Paused' ? r.body : undefined;
      });
      expect(paused.step).toBe(1);
      expect(paused.history.map((h: { event: string }) => h.event)).toContain('WeightAcked');
      for (const c of clients) await routesApplied(c, 'echo', { 'x-canary': 'true' }, 'v2');

      const results = await Promise.all(clients.map((c) => c.call('echo', 500)));
      const canaryShare = share(results, 'v2');
      console.log(`${impl.name}: measured canary share at 20%: ${(canaryShare * 100).toFixed(1)}% of 1000 calls`);
      expect(Math.abs(canaryShare - 0.2)).toBeLessThan(0.05);

      for (const c of clients) {
        const cohort = await c.call('echo', 30, { metadata: { 'x-canary': 'true' } });
        expect(cohort.versions).toEqual({ v2: 30 });
        const other = await c.call('echo', 30, { metadata: { 'x-canary': 'nope' } });
        expect(other.errors).toEqual({});
      }
    });

    it('promote goes on to the next weight step', async () => {
      const promoted = await sluice.api('POST', '/v1/rollouts/echo/promote', {});
      expect(promoted.status).toBe(200);
      expect(promoted.body.weights).toEqual({ v1: 50, v2: 50 });
      const timed = await eventually(async () => {
        const r = await sluice.api('GET', '/v1/rollouts/echo');
        return r.body.pauseUntil ? r.body : undefined;
      });
      expect(timed.phase).toBe('Progressing');
      expect(timed.step).toBe(3);
    });

    it('rolls back: every node ACKs, and all calls reach stable within a second', async () => {
      const started = Date.now();
      const rb = await sluice.api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'e2e' });
      expect(rb.status).toBe(200);
      expect(rb.body.phase).toBe('RolledBack');
      expect(rb.body.weights).toEqual({ v1: 100, v2: 0 });
      expect(rb.body.fleet.acknowledged).toBe(true);
      expect(rb.body.fleet.nodes.map((n: { node: string; state: string }) => [n.node, n.state])).toEqual([
        ['r-1', 'acked'],
        ['r-2', 'acked'],
      ]);
      for (const n of rb.body.fleet.nodes) expect(n.ms).toBeGreaterThanOrEqual(0);
      const routedMs = await Promise.all(
        clients.map((c) =>
          eventually(async () => {
            const r = await c.call('echo', 20);
            return r.versions.v1 === 20 ? Date.now() - started : undefined;
          }, 5000, 10),
        ),
      );
      const last = Math.max(...routedMs);
      console.log(
        `${impl.name}: rollback ACKed by the fleet in ${rb.body.fleet.elapsedMs} ms; last client routed 100% to stable ${last} ms after the REST call`,
      );
      expect(last).toBeLessThan(1000);
      // Header routes are gone too.
      for (const c of clients) expect((await c.call('echo', 20, { metadata: { 'x-canary': 'true' } })).versions).toEqual({ v1: 20 });
    });

    it('a new rollout promoted in full makes the canary the stable version', async () => {
      const created = await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] });
      expect(created.status).toBe(201);
      const done = await sluice.api('POST', '/v1/rollouts/echo/promote', { full: true });
      expect(done.body.phase).toBe('Promoted');
      expect((await sluice.api('GET', '/v1/services/echo')).body.stable).toBe('v2');
      for (const c of clients) await eventually(async () => (await c.call('echo', 20)).versions.v2 === 20, 5000, 20);
    });
  });
}

