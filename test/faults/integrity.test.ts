// The fault matrix of config integrity: declarations that collide, names from Object.prototype,
// restarts, concurrent writers, a second server, damaged store files, a read-only store, history
// that would grow without end. Each case runs against a real server process (as an unprivileged
// user, so file permissions mean what they say), and after each one a rollback of an unrelated
// service must still reach a real proxyless client, and nothing acknowledged may be lost.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnXdsClient } from '../../src/demo/xds-client.js';
import type { SluiceProcess } from '../support/process.js';
import { freePort, NOBODY, spawnSluice } from '../support/process.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';

let dataDir: string;
let httpPort: number;
let xdsPort: number;
let server: SluiceProcess;
let v1: Backend;
let v2: Backend;
let client: XdsClient;
/** Every service the API acknowledged (2xx), with the stable version it last acknowledged. */
const acknowledged = new Map<string, string>();

const start = (extra: string[] = []) => spawnSluice({ dataDir, httpPort, xdsPort, user: NOBODY, captureLogs: true, extra });
const api = (method: string, url: string, body?: unknown) => server.api(method, url, body);

async function declare(name: string, body: { versions: Record<string, unknown>; stable: string }): Promise<number> {
  const res = await api('PUT', `/v1/services/${name}`, body);
  if (res.status < 300) acknowledged.set(name, body.stable);
  return res.status;
}

async function restart(): Promise<void> {
  await server.kill('SIGKILL');
  server = await start();
}

/** Everything the API acknowledged is still there, as acknowledged. */
async function nothingLost(): Promise<void> {
  const { body } = await api('GET', '/v1/services');
  const stored = new Map<string, string>(body.services.map((s: { name: string; stable: string }) => [s.name, s.stable]));
  for (const [name, stable] of acknowledged) expect(stored.get(name), `service ${name}`).toBe(stable);
}

/** A rollout of `echo` moves the real client to the canary, and its rollback moves it back. */
async function rollbackReachesClient(): Promise<void> {
  const created = await api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 100 }, { pause: {} }] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await eventually(async () => (await client.call('echo', 5)).versions.v2 === 5, 15_000, 50);
  const rolledBack = await api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'fault matrix' });
  expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
  expect(rolledBack.body.fleet.acknowledged).toBe(true);
  await eventually(async () => (await client.call('echo', 5)).versions.v1 === 5, 15_000, 50);
  await nothingLost();
}

beforeAll(async () => {
  dataDir = tempDir('sluice-faults-');
  fs.chownSync(dataDir, NOBODY.uid, NOBODY.gid);
  [httpPort, xdsPort] = await Promise.all([freePort(), freePort()]);
  server = await start();
  [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
  expect(await declare('echo', serviceOf({ v1: v1.port, v2: v2.port }))).toBe(201);
  client = await spawnXdsClient({ nodeId: 'faults-client', xdsPort });
  await eventually(async () => (await client.call('echo', 1)).versions.v1 === 1, 20_000, 100);
}, 60_000);

afterAll(async () => {
  await client?.stop();
  await Promise.all([v1?.stop(), v2?.stop()]);
  await server?.kill('SIGKILL');
});

const two = (a: number, b: number) => serviceOf({ a, b });

describe('fault matrix: config integrity', () => {
  it('refuses a second service whose derived cluster name is taken ("a-b" + "c" vs "a" + "b-c")', async () => {
    expect(await declare('a-b', { versions: { c: { endpoints: [{ address: '10.0.0.1', port: 80 }] } }, stable: 'c' })).toBe(201);
    const res = await api('PUT', '/v1/services/a', { versions: { 'b-c': { endpoints: [{ address: '10.0.0.2', port: 80 }] } }, stable: 'b-c' });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('cluster "a-b-c" of version "b-c" is already used by service "a-b" version "c"');
    expect(res.body.error.details[0].field).toBe('versions.b-c.cluster');
    await rollbackReachesClient();
  });

  it('refuses one explicit cluster name on two versions, and another service\'s cluster name', async () => {
    const twice = await api('PUT', '/v1/services/x', {
      versions: { a: { endpoints: [{ address: '10.0.0.1', port: 80 }], cluster: 'x' }, b: { endpoints: [{ address: '10.0.0.2', port: 80 }], cluster: 'x' } },
      stable: 'a',
    });
    expect(twice.status).toBe(409);
    expect(twice.body.error.message).toMatch(/cluster "x" of version "[ab]" is already used by service "x" version "[ab]"/);
    const stolen = await api('PUT', '/v1/services/thief', { versions: { v1: { endpoints: [{ address: '10.0.0.3', port: 80 }], cluster: 'echo-v2' } }, stable: 'v1' });
    expect(stolen.status).toBe(409);
    expect(stolen.body.error.message).toContain('cluster "echo-v2" of version "v1" is already used by service "echo" version "v2"');
    await rollbackReachesClient();
  });

  it('refuses names from Object.prototype where they would be looked up', async () => {
    const ctor = await api('PUT', '/v1/services/proto', { versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 80 }] } }, stable: 'constructor' });
    expect(ctor.status).toBe(400);
    expect(ctor.body.error.details[0]).toMatchObject({ field: 'stable' });
    const canary = await api('POST', '/v1/rollouts', { service: 'echo', canary: 'hasOwnProperty', steps: [{ setWeight: 10 }] });
    expect(canary.status).toBe(400);
    expect(canary.body.error.details[0]).toMatchObject({ field: 'canary' });
    // A version really named like a prototype member is an ordinary version.
    expect(await declare('proto', { versions: { constructor: { endpoints: [{ address: '10.0.0.1', port: 80 }] }, toString: { endpoints: [{ address: '10.0.0.2', port: 80 }] } }, stable: 'constructor' })).toBe(201);
    expect((await api('POST', '/v1/rollouts', { service: 'proto', canary: 'toString', steps: [{ setWeight: 10 }, { pause: {} }] })).status).toBe(201);
    expect((await api('POST', '/v1/rollouts/proto/rollback', {})).status).toBe(200);
    await rollbackReachesClient();
  });

  it('keeps a human\'s stable change after a promotion, across a restart', async () => {
    expect(await declare('promo', two(8001, 8002))).toBe(201);
    expect((await api('POST', '/v1/rollouts', { service: 'promo', canary: 'b', steps: [{ setWeight: 10 }, { pause: {} }] })).status).toBe(201);
    expect((await api('POST', '/v1/rollouts/promo/promote', { full: true })).body.phase).toBe('Promoted');
    expect((await api('GET', '/v1/services/promo')).body.stable).toBe('b');
    expect(await declare('promo', two(8001, 8002))).toBe(200); // back to stable "a", by hand
    await restart();
    expect((await api('GET', '/v1/services/promo')).body.stable).toBe('a');
    expect((await api('GET', '/v1/rollouts/promo')).body.phase).toBe('Promoted');
    await rollbackReachesClient();
  });

  it('never leaves an active rollout on a version or service that concurrent writes removed', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 30; round++) {
      const name = `race-${round}`;
      expect(await declare(name, two(9000 + round, 9100 + round))).toBe(201);
      // Each order of arrival, and everything in between: in half the rounds the removal leaves
      // 0-4 ms after the rollout, in the other half the rollout leaves 0-4 ms after the removal.
      const later = <T>(first: boolean, send: () => Promise<T>) => (first ? send() : new Promise((r) => setTimeout(r, round % 5)).then(send));
      const removalFirst = Math.floor(round / 5) % 2 === 1;
      const removal = later(removalFirst, () =>
        round % 2 === 0
          ? api('PUT', `/v1/services/${name}`, { versions: { a: { endpoints: [{ address: '127.0.0.1', port: 9000 + round }] } }, stable: 'a' })
          : api('DELETE', `/v1/services/${name}`),
      );
      const rolloutSent = later(!removalFirst, () => api('POST', '/v1/rollouts', { service: name, canary: 'b', steps: [{ setWeight: 10 }, { pause: {} }] }));
      const [rollout, removed] = await Promise.all([rolloutSent, removal]);
      outcomes.push(`${rollout.status}/${removed.status}`);
      expect(rollout.status < 300 && removed.status < 300, `round ${round}: rollout ${rollout.status}, removal ${removed.status}`).toBe(false);
      const service = (await api('GET', `/v1/services/${name}`)).body;
      const r = (await api('GET', `/v1/rollouts/${name}`)).body;
      if (r?.phase === 'Progressing' || r?.phase === 'Paused') {
        expect(service.versions).toHaveProperty('b');
        expect((await api('POST', `/v1/rollouts/${name}/rollback`, {})).status).toBe(200);
      }
      if (removed.status < 300) {
        if (round % 2 === 0) acknowledged.set(name, 'a');
        else acknowledged.delete(name);
      }
    }
    console.log(`concurrent rollout/removal outcomes: ${outcomes.join(' ')}`);
    // Both orders really happened: some rounds the rollout won, some the removal.
    expect(new Set(outcomes.map((o) => o.startsWith('201')))).toEqual(new Set([true, false]));
    await rollbackReachesClient();
  });

  it('refuses to start a second server on the same data directory', async () => {
    const [h, x] = await Promise.all([freePort(), freePort()]);
    await expect(spawnSluice({ dataDir, httpPort: h, xdsPort: x, user: NOBODY, captureLogs: true })).rejects.toThrow(/data dir .* is in use by another Sluice \(pid \d+/);
    expect((await api('GET', '/readyz')).status).toBe(200); // the first one is unharmed
    await rollbackReachesClient();
  });

  it('quarantines corrupt, empty and mismatched store files at start-up and serves everything else', async () => {
    expect(await declare('victim', two(8101, 8102))).toBe(201);
    await server.kill('SIGKILL');
    const file = (key: string) => path.join(dataDir, `${key}.json`);
    fs.writeFileSync(file('services/corrupt'), '{"versions": {"a": ');
    fs.writeFileSync(file('services/empty'), '');
    // A file under one name that holds another service would replace it.
    fs.writeFileSync(file('services/impostor'), JSON.stringify({ name: 'victim', ...two(1, 2) }));
    fs.writeFileSync(file('rollouts/victim'), '{}');
    for (const f of ['services/corrupt', 'services/empty', 'services/impostor', 'rollouts/victim']) fs.chownSync(file(f), NOBODY.uid, NOBODY.gid);
    server = await start();
    const status = (await api('GET', '/v1/status')).body;
    const keys = status.quarantined.map((q: { key: string }) => q.key).sort();
    expect(keys).toEqual(['rollouts/victim', 'services/corrupt', 'services/empty', 'services/impostor']);
    expect(status.quarantined.find((q: { key: string }) => q.key === 'services/impostor').reason).toContain('holds service "victim", not "impostor"');
    for (const q of status.quarantined) expect(fs.existsSync(q.movedTo)).toBe(true); // kept for a human
    expect(server.logs()).toContain('services/corrupt');
    expect((await api('GET', '/v1/services/victim')).body.versions.a.endpoints[0].port).toBe(8101);
    await rollbackReachesClient();
  });

  it('keeps history bounded and archives past rollouts', async () => {
    expect(await declare('busy', two(8201, 8202))).toBe(201);
    const steps = [{ setWeight: 10 }, { pause: { duration: '1h' } }];
    for (let i = 0; i < 30; i++) {
      expect((await api('POST', '/v1/rollouts', { service: 'busy', canary: 'b', steps })).status).toBe(201);
      expect((await api('POST', '/v1/rollouts/busy/rollback', { reason: `${i} ${'x'.repeat(900)}` })).status).toBe(200);
    }
    const archived = (await api('GET', '/v1/rollouts/busy/history')).body.rollouts;
    expect(archived.length).toBe(20); // the 20 newest finished rollouts of the service
    expect(archived[0].history.at(-1).reason.startsWith('28 ')).toBe(true); // newest first (29 is current)
    // A rollback of a rolled-back rollout is refused and stores nothing.
    expect((await api('POST', '/v1/rollouts/busy/rollback', {})).status).toBe(409);
    // One rollout's own history is bounded: 125 pause/resume pairs.
    expect((await api('POST', '/v1/rollouts', { service: 'busy', canary: 'b', steps })).status).toBe(201);
    for (let i = 0; i < 125; i++) {
      expect((await api('POST', '/v1/rollouts/busy/pause', {})).status).toBe(200);
      expect((await api('POST', '/v1/rollouts/busy/resume', {})).status).toBe(200);
    }
    const r = (await api('GET', '/v1/rollouts/busy')).body;
    expect(r.history.length).toBe(200);
    expect(r.historyDropped).toBeGreaterThan(50);
    expect(r.history.at(-1).event).toBe('Resumed');
    // Deleting is for finished rollouts only; the deleted one stays in the archive.
    expect((await api('DELETE', '/v1/rollouts/busy')).status).toBe(409);
    expect((await api('POST', '/v1/rollouts/busy/rollback', {})).status).toBe(200);
    expect((await api('DELETE', '/v1/rollouts/busy')).status).toBe(204);
    expect((await api('GET', '/v1/rollouts/busy')).status).toBe(404);
    expect((await api('GET', '/v1/rollouts/busy/history')).body.rollouts[0].id).toBe(r.id);
    await rollbackReachesClient();
  });

  it('rolls back on a read-only store: the fleet gets it, the API says it is not persisted, persistence resumes', async () => {
    const created = await api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 100 }, { pause: {} }] });
    expect(created.status).toBe(201);
    await eventually(async () => (await client.call('echo', 5)).versions.v2 === 5, 15_000, 50);
    const dirs = [dataDir, ...fs.readdirSync(dataDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dataDir, e.name))];
    for (const d of dirs) fs.chmodSync(d, 0o555);
    try {
      const rolledBack = await api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'disk is read-only' });
      expect(rolledBack.status).toBe(507);
      expect(rolledBack.body.error.code).toBe('not_persisted');
      expect(rolledBack.body.error.message).toContain('rolled back and pushed to the fleet, but not persisted');
      expect(rolledBack.body.rollout.phase).toBe('RolledBack');
      expect(rolledBack.body.fleet.acknowledged).toBe(true);
      await eventually(async () => (await client.call('echo', 5)).versions.v1 === 5, 15_000, 50);
      const ready = await api('GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.reason).toContain('echo');
      const other = await api('PUT', '/v1/services/later', two(1, 2));
      expect(other.status).toBe(503);
      expect(other.body.error.message).toContain('the store cannot be written');
    } finally {
      for (const d of dirs) fs.chmodSync(d, 0o700);
    }
    await eventually(async () => (await api('GET', '/readyz')).status === 200, 15_000, 100);
    await restart(); // what was only in memory is on disk now
    expect((await api('GET', '/v1/rollouts/echo')).body.phase).toBe('RolledBack');
    await rollbackReachesClient();
  });
});
