// Sticky users by bucket end to end: real Sluice, real gRPC backends, real proxyless clients of
// both implementations sending every bucket value in a header. Buckets below the canary's share
// reach the canary, the rest stable; a bucket keeps its version while the weight rises; requests
// without the header keep the weighted random split; a rollback sends every bucket to stable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnPythonXdsClient, spawnXdsClient } from '../../src/demo/xds-client.js';
import { routesApplied } from '../support/applied.js';
import { hasPythonGrpc } from '../support/python.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

const HEADER = 'x-user-bucket';
const BUCKETS = 100;
/** Calls per bucket: every one must reach the same version. */
const CALLS = 3;

const implementations = [
  { name: 'grpc-js-xds', spawn: spawnXdsClient, available: true },
  { name: 'C-core (python3-grpcio)', spawn: spawnPythonXdsClient, available: hasPythonGrpc() },
].filter((i) => i.available);

/** The version each bucket reached ('mixed' when its calls disagreed, 'error' when one failed). */
async function versionsByBucket(client: XdsClient, extra: Record<string, string> = {}): Promise<string[]> {
  const results = await Promise.all(
    Array.from({ length: BUCKETS }, (_, b) => client.call('echo', CALLS, { metadata: { ...extra, [HEADER]: String(b) } })),
  );
  return results.map((r) => {
    if (Object.keys(r.errors).length > 0) return 'error';
    const seen = Object.keys(r.versions);
    return seen.length === 1 && r.versions[seen[0]!] === CALLS ? seen[0]! : 'mixed';
  });
}

/** Ten buckets a row, for the closing note. */
function table(title: string, versions: readonly string[]): string {
  const rows = [title, `  bucket ${Array.from({ length: 10 }, (_, i) => String(i).padStart(3)).join('')}`];
  for (let from = 0; from < versions.length; from += 10)
    rows.push(`  ${`${from}-${from + 9}`.padStart(6)} ${versions.slice(from, from + 10).map((v) => v.padStart(3)).join('')}`);
  return rows.join('\n');
}

const expected = (canaryBuckets: number) => Array.from({ length: BUCKETS }, (_, b) => (b < canaryBuckets ? 'v2' : 'v1'));

function canaryShare(versions: Record<string, number>): number {
  const total = Object.values(versions).reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : (versions.v2 ?? 0) / total;
}

/** Waits until the rollout holds at `step` (its weight ACKed by every node), and checks that no
 *  node rejected anything on the way. */
async function pausedAt(sluice: TestSluice, step: number): Promise<void> {
  await eventually(async () => {
    const r = await sluice.api('GET', '/v1/rollouts/echo');
    return r.body.phase === 'Paused' && r.body.pausedBy === 'step' && r.body.step === step;
  });
  const { body } = await sluice.api('GET', '/v1/fleet');
  for (const node of body.nodes as { id: string; types: Record<string, { lastNack: unknown }> }[])
    for (const [type, t] of Object.entries(node.types)) expect(t.lastNack, `${node.id} ${type}`).toBeNull();
}

describe.runIf(implementations.length > 0)('sticky buckets with real proxyless clients', () => {
  let sluice: TestSluice;
  let v1: Backend;
  let v2: Backend;
  const clients: { name: string; client: XdsClient }[] = [];
  /** Per client, the version of each bucket at 20%. */
  const at20 = new Map<string, string[]>();

  beforeAll(async () => {
    sluice = await startTestSluice();
    [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
    for (const impl of implementations)
      clients.push({ name: impl.name, client: await impl.spawn({ nodeId: `sticky-${impl.name.split(' ')[0]}`, xdsPort: sluice.xdsPort }) });
    for (const { client } of clients) await eventually(async () => (await client.call('echo', 1)).versions.v1 === 1, 15_000, 100);
  });

  afterAll(async () => {
    await Promise.all(clients.map(({ client }) => client.stop()));
    await Promise.all([v1?.stop(), v2?.stop()]);
    await sluice?.stop();
  });

  it('at 20%: exactly buckets 0-19 reach the canary, every call of a bucket the same version', async () => {
    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 20 }, { pause: {} }, { setWeight: 50 }, { pause: {} }],
      headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
      sticky: { bucketHeader: 'X-User-Bucket' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.spec.sticky).toEqual({ bucketHeader: 'X-User-Bucket', buckets: 100 });
    await pausedAt(sluice, 1); // every node ACKed 20%
    for (const { name, client } of clients) {
      await routesApplied(client, 'echo', { [HEADER]: '19' }, 'v2');
      const versions = await versionsByBucket(client);
      console.log(table(`${name}: canary weight 20%, ${CALLS} calls per bucket (${HEADER}: 0..99)`, versions));
      expect(versions).toEqual(expected(20));
      at20.set(name, versions);
    }
  });

  /** How far a random split of n calls may stray from share p: five standard deviations of the
   *  binomial (a fixed ±0.05 at 50 % failed once in a few hundred runs; a wrong weight, e.g. 30 %
   *  for 20 %, is still far outside). */
  const splitTolerance = (p: number, n: number) => 5 * Math.sqrt((p * (1 - p)) / n);

  it('at 20%: other values go to stable, cohorts keep priority, no header keeps the weighted split', async () => {
    for (const { name, client } of clients) {
      for (const value of ['abc', '7.5', '-1', '100', '99999999999999999999', ''])
        expect((await client.call('echo', 20, { metadata: { [HEADER]: value } })).versions, `${name} ${HEADER}: "${value}"`).toEqual({ v1: 20 });
      // A tester in a stable bucket still reaches the canary: header cohorts come first.
      expect((await client.call('echo', 5, { metadata: { 'x-canary': 'true', [HEADER]: '99' } })).versions, name).toEqual({ v2: 5 });
      const random = await client.call('echo', 1000);
      const share = canaryShare(random.versions);
      console.log(`${name}: without ${HEADER}, canary share at 20%: ${(share * 100).toFixed(1)}% of 1000 calls`);
      expect(random.errors).toEqual({});
      expect(Math.abs(share - 0.2)).toBeLessThan(splitTolerance(0.2, 1000));
    }
  });

  it('at 50%: buckets 0-49 reach the canary, and every bucket that was on it at 20% still is', async () => {
    const promoted = await sluice.api('POST', '/v1/rollouts/echo/promote', {});
    expect(promoted.status).toBe(200);
    expect(promoted.body.weights).toEqual({ v1: 50, v2: 50 });
    await pausedAt(sluice, 3);
    for (const { name, client } of clients) {
      await routesApplied(client, 'echo', { [HEADER]: '49' }, 'v2');
      const versions = await versionsByBucket(client);
      console.log(table(`${name}: canary weight 50%, ${CALLS} calls per bucket (${HEADER}: 0..99)`, versions));
      expect(versions).toEqual(expected(50));
      const before = at20.get(name)!;
      const moved = before.flatMap((v, b) => (v === 'v2' && versions[b] !== 'v2' ? [b] : []));
      expect(moved, `${name}: buckets that left the canary`).toEqual([]);
      const share = canaryShare((await client.call('echo', 1000)).versions);
      console.log(`${name}: without ${HEADER}, canary share at 50%: ${(share * 100).toFixed(1)}% of 1000 calls`);
      expect(Math.abs(share - 0.5)).toBeLessThan(splitTolerance(0.5, 1000));
    }
  });

  it('rollback sends every bucket to stable once the fleet ACKed it', async () => {
    const rb = await sluice.api('POST', '/v1/rollouts/echo/rollback?wait=ack&timeout=5s', { reason: 'e2e sticky' });
    expect(rb.status).toBe(200);
    expect(rb.body.fleet.acknowledged).toBe(true);
    for (const { name, client } of clients) {
      await routesApplied(client, 'echo', { [HEADER]: '0' }, 'v1');
      const versions = await versionsByBucket(client);
      expect(versions, name).toEqual(expected(0));
      expect((await client.call('echo', 5, { metadata: { 'x-canary': 'true', [HEADER]: '0' } })).versions, name).toEqual({ v1: 5 });
    }
  });
});
