// GET /v1/events: live rollout changes, and a client that stops reading costs a bounded amount.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

let sluice: TestSluice;

beforeAll(async () => {
  sluice = await startTestSluice();
  expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 1, v2: 2 }))).status).toBe(201);
});

afterAll(async () => {
  await sluice?.stop();
});

/** A raw HTTP client that asks for the event stream and then never reads. */
function stalledClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
      socket.once('data', () => {
        socket.pause(); // from now on nothing is read: the kernel buffers fill, then the server's
        resolve(socket);
      });
    });
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

describe('server-sent events', () => {
  it('streams the current state, then each change', async () => {
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${sluice.httpPort}/v1/events`, { signal: controller.signal });
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: string) => {
      while (!text.includes(until)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] });
    await read('"phase":"');
    await sluice.api('POST', '/v1/rollouts/echo/rollback', {});
    await read('"RolledBack"');
    controller.abort();
  });

  it('holds at most the latest state per service for clients that stop reading', async () => {
    const stalled = await Promise.all(Array.from({ length: 5 }, () => stalledClient(sluice.httpPort)));
    expect((await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: { duration: '1h' } }] })).status).toBe(201);
    const heapBefore = process.memoryUsage().heapUsed;
    // 2,000 changes of a rollout whose state grows to a full history (~50 KB of JSON each).
    for (let i = 0; i < 1000; i++) {
      await sluice.state.rolloutEvent('echo', { type: 'pause' }, 'test');
      await sluice.state.rolloutEvent('echo', { type: 'resume' }, 'test');
    }
    const grownMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const stateKiB = JSON.stringify(sluice.state.state.rollouts.get('echo')).length / 1024;
    console.log(`5 stalled SSE clients, 2000 changes of a ${stateKiB.toFixed(0)} KiB state: heap grew ${grownMiB.toFixed(1)} MiB`);
    // Without back-pressure every client would buffer every change: 5 × 2000 × ~50 KiB ≈ 500 MiB.
    expect(grownMiB).toBeLessThan(100);
    // A reading client still gets the live stream meanwhile.
    const live = await fetch(`http://127.0.0.1:${sluice.httpPort}/v1/events`);
    const first = new TextDecoder().decode((await live.body!.getReader().read()).value);
    expect(first).toContain('event: rollout');
    for (const s of stalled) s.destroy();
    await eventually(() => true);
  }, 90_000); // 2,000 stored (fsynced) changes: 10 s on an idle machine, near 30 s on a loaded one
});
