// Crash safety: kill -9 during a burst of API writes; after a restart every write that got a
// 2xx is there, and a rollout resumes where it was (weights, timed pause with the time left).
import { afterAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/demo/backend.js';
import type { Backend } from '../../src/demo/backend.js';
import { spawnXdsClient } from '../../src/demo/xds-client.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import type { SluiceProcess } from '../support/process.js';
import { freePort, spawnSluice } from '../support/process.js';
import { eventually, tempDir, serviceOf } from '../support/sluice.js';

const service = (port: number, stable = 'v1', extra: Record<string, unknown> = {}) => ({
  versions: {
    v1: { endpoints: [{ address: '127.0.0.1', port }] },
    v2: { endpoints: [{ address: '127.0.0.1', port: port + 1 }] },
  },
  stable,
  ...extra,
});

describe('crash safety', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('keeps every acknowledged write across kill -9', async () => {
    const dataDir = tempDir();
    const ports = { httpPort: await freePort(), xdsPort: await freePort() };
    let sluice: SluiceProcess = await spawnSluice({ dataDir, ...ports });
    cleanup.push(() => sluice.kill());

    const acknowledged = new Map<string, number>(); // service → the port of its last 2xx write
    let killed = false;
    const writer = async (w: number) => {
      for (let i = 0; !killed; i++) {
        const name = `svc-${w}-${i % 25}`;
        const port = 20_000 + i * 2;
        try {
          const res = await sluice.api('PUT', `/v1/services/${name}`, service(port));
          if (res.status < 300) acknowledged.set(name, port);
        } catch {
          return; // the server died mid-request: that write was never acknowledged
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    await eventually(() => acknowledged.size >= 60, 20_000, 10);
    killed = true;
    await sluice.kill('SIGKILL');
    await Promise.all(writers);
    console.log(`kill -9 after ${acknowledged.size} services acknowledged`);

    sluice = await spawnSluice({ dataDir, ...ports });
    const listed = (await sluice.api('GET', '/v1/services')).body.services as { name: string; versions: { v1: { endpoints: { port: number }[] } } }[];
    const stored = new Map(listed.map((s) => [s.name, s.versions.v1.endpoints[0]!.port]));
    for (const [name, port] of acknowledged) {
      expect(stored.has(name), name).toBe(true);
      // The last acknowledged write or a later one that was in flight when the process died.
      expect(stored.get(name)!).toBeGreaterThanOrEqual(port);
    }
  });

  it('resumes a rollout after kill -9: same weights to reconnecting clients, timed pause with the time it had left', async () => {
    const dataDir = tempDir();
    const ports = { httpPort: await freePort(), xdsPort: await freePort() };
    let sluice: SluiceProcess = await spawnSluice({ dataDir, ...ports });
    cleanup.push(() => sluice.kill());
    const v1: Backend = await startBackend({ version: 'v1' });
    const v2: Backend = await startBackend({ version: 'v2' });
    cleanup.push(() => Promise.all([v1.stop(), v2.stop()]));
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
    const client: XdsClient = await spawnXdsClient({ nodeId: 'survivor', xdsPort: ports.xdsPort });
    cleanup.push(() => client.stop());
    await eventually(async () => (await client.call('echo', 1)).versions.v1 === 1, 15_000, 100);

    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 100 }, { pause: { duration: '12s' } }, { setWeight: 0 }, { pause: {} }],
    });
    expect(created.status).toBe(201);
    const before = await eventually(async () => {
      const r = (await sluice.api('GET', '/v1/rollouts/echo')).body;
      return r.pauseUntil ? r : undefined;
    });
    await eventually(async () => (await client.call('echo', 10)).versions.v2 === 10, 5000, 20);

    await sluice.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000)); // down for a while
    sluice = await spawnSluice({ dataDir, ...ports });
    const after = (await sluice.api('GET', '/v1/rollouts/echo')).body;
    expect(after.phase).toBe('Progressing');
    expect(after.step).toBe(before.step);
    expect(after.weights).toEqual({ v1: 0, v2: 100 });
    expect(after.pauseUntil).toBe(before.pauseUntil); // the deadline survived: the time left is kept
    // The client reconnects and still gets 100% canary while the pause runs...
    await eventually(async () => (await client.call('echo', 10)).versions.v2 === 10, 15_000, 50);
    // ...and the restarted scheduler ends the pause at its deadline and applies the next step.
    const next = await eventually(async () => {
      const r = (await sluice.api('GET', '/v1/rollouts/echo')).body;
      return r.phase === 'Paused' ? r : undefined;
    }, 15_000, 100);
    expect(next.weights).toEqual({ v1: 100, v2: 0 });
    const resumedAt = Date.parse(next.history.find((h: { event: string; step?: number }) => h.event === 'StepCompleted' && h.step === 1)?.at ?? '');
    expect(resumedAt).toBeGreaterThanOrEqual(Date.parse(before.pauseUntil));
    await eventually(async () => (await client.call('echo', 10)).versions.v1 === 10, 5000, 20);
  });
});
