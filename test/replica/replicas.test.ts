// Three Sluice replicas (real processes) on a 3-member etcd cluster on loopback, with a real
// @grpc/grpc-js-xds client connected to each: changes made through any replica move the
// traffic of every client; steps wait for the nodes of every replica; exactly one of two
// conflicting declarations wins; kill -9 of the leader mid-pause hands the schedule over at
// the pause's deadline; one etcd member down changes nothing; without quorum the replicas
// serve what they have, refuse changes, still roll back their own clients, and recover alone.
import fs from 'node:fs';
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../../src/demo/backend.js';
import type { Backend } from '../../src/demo/backend.js';
import { spawnXdsClient } from '../../src/demo/xds-client.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import type { EtcdCluster } from '../support/etcd.js';
import { etcdAvailable, startEtcdCluster } from '../support/etcd.js';
import type { SluiceProcess } from '../support/process.js';
import { freePort, spawnSluice } from '../support/process.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';

interface Replica {
  id: string;
  dataDir: string;
  httpPort: number;
  xdsPort: number;
  proc: SluiceProcess;
}

describe.skipIf(!etcdAvailable)('replicas on etcd', () => {
  let etcd: EtcdCluster;
  let storeUrl: string;
  const replicas: Replica[] = [];
  const clients: XdsClient[] = [];
  let v1: Backend;
  let v2: Backend;

  const start = async (r: Omit<Replica, 'proc'>): Promise<Replica> => {
    const proc = await spawnSluice({
      dataDir: r.dataDir,
      httpPort: r.httpPort,
      xdsPort: r.xdsPort,
      captureLogs: true,
      readyTimeoutMs: 60_000,
      extra: ['--store', storeUrl, '--replica-id', r.id, '--lease-ttl', '2s', '--etcd-timeout', '1s', '--lrs-interval', '1s', ...(process.env.SLUICE_TEST_LOG ? ['--log-level', 'info'] : [])],
    });
    return { ...r, proc };
  };
  const api = (i: number, method: string, path: string, body?: unknown) => replicas[i]!.proc.api(method, path, body);
  /** Whether every one of `count` calls of the client reached `version`. */
  const all = async (client: XdsClient, version: string, count = 10) => (await client.call('echo', count, { deadlineMs: 1000 })).versions[version] === count;
  const everyone = async (version: string) => (await Promise.all(clients.map((c) => all(c, version)))).every(Boolean);
  const rollout = async (i = 0) => (await api(i, 'GET', '/v1/rollouts/echo')).body;
  const leaderIndex = async (from = 0) => {
    const leader = await eventually(async () => (await api(from, 'GET', '/v1/status')).body.replicas?.leader as string | null, 15_000, 100);
    return replicas.findIndex((r) => r.id === leader);
  };

  beforeAll(async () => {
    etcd = await startEtcdCluster({ size: 3 });
    storeUrl = `etcd://${etcd.hosts.map((h) => h.replace('http://', '')).join(',')}`;
    [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
    const specs = await Promise.all(['r0', 'r1', 'r2'].map(async (id) => ({ id, dataDir: tempDir(), httpPort: await freePort(), xdsPort: await freePort() })));
    // One after the other: three at once would compete with the rest of the suite for the CPU.
    for (const spec of specs) replicas.push(await start(spec));
    clients.push(...(await Promise.all(replicas.map((r, i) => spawnXdsClient({ nodeId: `client-${i}`, xdsPort: r.xdsPort })))));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    for (const r of replicas) {
      if (process.env.SLUICE_TEST_LOG) console.log(`--- ${r.id}\n${r.proc.logs()}`);
      await r.proc.kill();
      fs.rmSync(r.dataDir, { recursive: true, force: true });
    }
    await Promise.all([v1?.stop(), v2?.stop()]);
    await etcd?.close();
  });

  it('moves the clients of every replica with a rollout declared on one, waits for all of them, and rolls everyone back through another', async () => {
    expect((await api(0, 'PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
    await eventually(() => everyone('v1'), 20_000, 100);

    const created = await api(0, 'POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 100 }, { pause: {} }] });
    expect(created.status).toBe(201);
    await eventually(() => everyone('v2'), 15_000, 50);
    // The step completed only once the nodes of all three replicas had ACKed it.
    const paused = await eventually(async () => {
      const r = await rollout(1);
      return r.phase === 'Paused' ? r : undefined;
    });
    expect(paused.lastAckNodes).toBe(3);

    const fleet = (await api(2, 'GET', '/v1/fleet')).body;
    expect(fleet.nodes.map((n: { id: string; replica: string }) => [n.id, n.replica])).toEqual([
      ['client-0', 'r0'],
      ['client-1', 'r1'],
      ['client-2', 'r2'],
    ]);

    const rolledBack = await api(1, 'POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=10s', { reason: 'through another replica' });
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body.phase).toBe('RolledBack');
    expect(rolledBack.body.fleet.acknowledged).toBe(true);
    expect(rolledBack.body.fleet.nodes.map((n: { node: string; replica: string; state: string }) => [n.node, n.replica, n.state]).sort()).toEqual([
      ['client-0', 'r0', 'acked'],
      ['client-1', 'r1', 'acked'],
      ['client-2', 'r2', 'acked'],
    ]);
    console.log(`rollback through r1 acknowledged by every replica's node: ${JSON.stringify(rolledBack.body.fleet.nodes.map((n: { replica: string; ms: number }) => [n.replica, n.ms]))} ms`);
    // Acknowledged means applied: every client calls v1 at once.
    expect(await everyone('v1')).toBe(true);
  }, 60_000);

  it("counts the nodes of other replicas on the event stream as they come and go", async () => {
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${replicas[0]!.httpPort}/v1/events`, { signal: controller.signal });
    const counts: number[] = [];
    const parser = createParser({ onEvent: (e) => e.event === 'fleet' && counts.push(JSON.parse(e.data).nodes) });
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
    })().catch(() => undefined);
    let visitor: XdsClient | undefined;
    try {
      await eventually(() => counts.at(-1) === 3, 10_000);
      // A node joins r2 and leaves it again; nothing happens on r0's own streams meanwhile.
      visitor = await spawnXdsClient({ nodeId: 'visitor', xdsPort: replicas[2]!.xdsPort });
      await eventually(() => all(visitor!, 'v1', 1), 20_000, 100);
      await eventually(() => counts.at(-1) === 4, 10_000);
      await visitor.stop();
      visitor = undefined;
      await eventually(() => counts.at(-1) === 3, 10_000);
    } finally {
      await visitor?.stop();
      controller.abort();
      await reading;
    }
  }, 60_000);

  it('lets exactly one of two conflicting declarations on two replicas win', async () => {
    for (let i = 0; i < 5; i++) {
      const body = (port: number) => ({ versions: { v: { endpoints: [{ address: '127.0.0.1', port }], cluster: `claimed-${i}` } }, stable: 'v' });
      const [a, b] = await Promise.all([api(0, 'PUT', `/v1/services/left-${i}`, body(1000 + i)), api(1, 'PUT', `/v1/services/right-${i}`, body(2000 + i))]);
      expect([a.status, b.status].sort(), `round ${i}`).toEqual([201, 409]);
      const loser = a.status === 409 ? a : b;
      expect(loser.body.error.message).toMatch(new RegExp(`cluster "claimed-${i}" of version "v" is already used by service "(left|right)-${i}"`));
      const winner = a.status === 201 ? `left-${i}` : `right-${i}`;
      for (const r of [0, 1, 2]) {
        const names = await eventually(async () => {
          const listed = ((await api(r, 'GET', '/v1/services')).body.services as { name: string }[]).map((s) => s.name);
          return listed.includes(winner) ? listed : undefined;
        });
        expect(names.filter((n) => n.endsWith(`-${i}`))).toEqual([winner]);
      }
    }
  }, 30_000);

  it('hands the schedule to another replica when the leader is killed mid-pause: the pause ends at its deadline, once', async () => {
    const created = await api(1, 'POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 50 }, { pause: { duration: '5s' } }, { setWeight: 100 }, { pause: {} }],
    });
    expect(created.status).toBe(201);
    const before = await eventually(async () => {
      const r = await rollout(1);
      return r.pauseUntil ? r : undefined;
    });
    const killed = await leaderIndex(1);
    expect(killed).toBeGreaterThanOrEqual(0);
    const alive = [0, 1, 2].find((i) => i !== killed)!;
    const killedAt = Date.now();
    await replicas[killed]!.proc.kill('SIGKILL');

    const after = await eventually(async () => {
      const r = await rollout(alive);
      return r.phase === 'Paused' && r.step === 3 ? r : undefined;
    }, 30_000, 100);
    expect(after.weights).toEqual({ v1: 0, v2: 100 });
    const endOfPause = after.history.filter((h: { event: string; step?: number }) => h.event === 'StepCompleted' && h.step === 1);
    expect(endOfPause).toHaveLength(1); // not repeated
    expect(endOfPause[0].by).toBe('schedule');
    expect(Date.parse(endOfPause[0].at)).toBeGreaterThanOrEqual(Date.parse(before.pauseUntil)); // not skipped
    expect(after.history.filter((h: { event: string }) => h.event === 'PauseStarted')).toHaveLength(1); // not restarted
    const newLeader = await leaderIndex(alive);
    expect(newLeader).not.toBe(killed);
    console.log(
      `leader ${replicas[killed]!.id} killed ${Date.parse(before.pauseUntil) - killedAt} ms before the pause's deadline; ` +
        `the pause ended ${Date.parse(endOfPause[0].at) - Date.parse(before.pauseUntil)} ms after it, by ${replicas[newLeader]!.id}`,
    );
    // The clients of the other replicas moved on; the killed one's client keeps its last config...
    for (const i of [0, 1, 2].filter((i) => i !== killed)) await eventually(() => all(clients[i]!, 'v2'), 10_000, 50);
    // ...until its replica is back (same id and ports) and serves the current state.
    replicas[killed] = await start(replicas[killed]!);
    await eventually(() => all(clients[killed]!, 'v2'), 20_000, 100);
    expect((await api(killed, 'POST', '/v1/rollouts/echo/rollback', {})).status).toBe(200);
    await eventually(() => everyone('v1'), 10_000, 50);
  }, 90_000);

  it('rolls back on the load reports of clients connected to another replica than the leader', async () => {
    const leader = await leaderIndex(0);
    const follower = [0, 1, 2].find((i) => i !== leader)!;
    v2.configure({ errorRate: 0.5 });
    let traffic = true;
    // Only the follower's client calls: the leader itself hears nothing.
    const loop = (async () => {
      while (traffic) {
        await clients[follower]!.call('echo', 20, { deadlineMs: 1000 }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const created = await api(follower, 'POST', '/v1/rollouts', {
        service: 'echo',
        canary: 'v2',
        steps: [{ setWeight: 50 }, { pause: {} }],
        analysis: { interval: '2s', minRequests: 20, inconclusiveLimit: 20, metrics: [{ name: 'success', successRate: { min: 0.95 } }] },
      });
      expect(created.status).toBe(201);
      const rolledBack = await eventually(async () => {
        const r = await rollout(leader);
        return r.phase === 'RolledBack' ? r : undefined;
      }, 30_000, 100);
      const entry = rolledBack.history.at(-1);
      expect(entry).toMatchObject({ event: 'RolledBack', by: 'analysis' });
      const failed = rolledBack.analysis.measurements.find((m: { phase: string }) => m.phase === 'Failed');
      expect(failed.requests.v2).toBeGreaterThanOrEqual(20);
      console.log(`analysis on leader ${replicas[leader]!.id} failed the canary on ${failed.requests.v2} canary requests reported to ${replicas[follower]!.id}: ${entry.reason}`);
    } finally {
      traffic = false;
      await loop;
      v2.configure({ errorRate: 0 });
    }
    await eventually(() => everyone('v1'), 10_000, 50);
  }, 60_000);

  it('keeps working with one etcd member down', async () => {
    await etcd.stop(0, 'SIGKILL');
    try {
      // The first write may meet etcd electing a new leader (seconds when the machine is busy:
      // the suite runs several etcd clusters at once on two cores).
      const killed = Date.now();
      await eventually(async () => (await api(1, 'PUT', '/v1/services/during-member-loss', serviceOf({ v1: 3000 }))).status === 201, 30_000, 200);
      console.log(`first write after losing an etcd member: ${Date.now() - killed} ms`);
      expect((await api(2, 'POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 100 }, { pause: {} }] })).status).toBe(201);
      await eventually(() => everyone('v2'), 15_000, 50);
      const paused = await eventually(async () => {
        const r = await rollout(0);
        return r.phase === 'Paused' ? r : undefined;
      }, 15_000);
      expect(paused.lastAckNodes).toBe(3);
      expect((await api(0, 'POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=10s', {})).body.fleet.acknowledged).toBe(true);
      expect(await everyone('v1')).toBe(true);
      for (const r of [0, 1, 2]) expect((await api(r, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await etcd.start(0);
    }
  }, 90_000);

  it('without quorum: serves what it has, refuses changes, rolls back its own clients, and recovers without a human', async () => {
    expect((await api(0, 'POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 100 }, { pause: {} }] })).status).toBe(201);
    await eventually(async () => (await rollout(0)).phase === 'Paused', 15_000);
    await eventually(() => everyone('v2'), 10_000, 50);

    await Promise.all([etcd.stop(1, 'SIGKILL'), etcd.stop(2, 'SIGKILL')]);
    try {
      for (const r of [0, 1, 2]) await eventually(async () => (await api(r, 'GET', '/readyz')).status === 503, 15_000, 200);
      expect(await everyone('v2')).toBe(true); // serving goes on
      const refused = await api(1, 'PUT', '/v1/services/no-quorum', serviceOf({ v1: 3001 }));
      expect(refused.status).toBe(503);
      expect(refused.body.error.message).toContain('the store cannot be written');

      const rolledBack = await api(1, 'POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=2s', { reason: 'etcd lost quorum' });
      expect(rolledBack.status).toBe(507);
      expect(rolledBack.body.rollout.phase).toBe('RolledBack');
      const own = rolledBack.body.fleet.nodes.find((n: { replica: string }) => n.replica === 'r1');
      expect(own).toMatchObject({ node: 'client-1', state: 'acked' });
      expect(rolledBack.body.fleet.nodes.filter((n: { replica: string }) => n.replica !== 'r1').map((n: { state: string; message: string }) => [n.state, n.message])).toEqual([
        ['pending', 'replica r0 cannot get this change: it is not stored yet (the store cannot be written)'],
        ['pending', 'replica r2 cannot get this change: it is not stored yet (the store cannot be written)'],
      ]);
      expect(await all(clients[1]!, 'v1')).toBe(true); // the replica's own client is rolled back
    } finally {
      await Promise.all([etcd.start(1), etcd.start(2)]);
    }
    // Back without a human: the rollback is stored, every replica serves it, all are ready.
    await eventually(() => everyone('v1'), 40_000, 200);
    for (const r of [0, 1, 2]) {
      await eventually(async () => (await api(r, 'GET', '/readyz')).status === 200, 30_000, 200);
      expect((await rollout(r)).phase).toBe('RolledBack');
    }
    // Nothing acknowledged was lost.
    const names = ((await api(2, 'GET', '/v1/services')).body.services as { name: string }[]).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'during-member-loss']));
    expect(names).not.toContain('no-quorum');
  }, 120_000);
});
