// `sluice fleet` with real xDS streams (synced, stale, NACKing), `rollback --wait` that the
// fleet does not acknowledge (exit 3), and `rollout status --watch` following a rollout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SotwClient } from '../support/ads-client.js';
import type { SotwResponse } from '../support/ads-client.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';
import type { TestSluice } from '../support/sluice.js';
import { exitOf, sluiceCli, spawnCli } from './run-cli.js';

const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

describe('fleet, rollback --wait and status --watch against real xDS streams', { timeout: 180_000 }, () => {
  let sluice: TestSluice;
  let server: string;
  const streams: SotwClient[] = [];
  const children: { kill(): boolean }[] = [];
  const cli = (...args: string[]) => sluiceCli([...args, '--server', server]);

  /** A proxyless-gRPC-like node subscribed to the routes of `echo`; returns its first response. */
  async function node(id: string): Promise<{ client: SotwClient; first: SotwResponse }> {
    const client = SotwClient.open(sluice.xdsPort, { node: { id, cluster: 'test', user_agent_name: 'grpc-node-js', user_agent_version: '1.14.0' } });
    streams.push(client);
    client.subscribe(RDS, ['echo']);
    return { client, first: await client.next(5000, RDS) };
  }

  beforeAll(async () => {
    sluice = await startTestSluice();
    server = `http://127.0.0.1:${sluice.httpPort}`;
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 50051, v2: 50052 }))).status).toBe(201);
  });
  afterAll(async () => {
    for (const s of streams) s.cancel();
    for (const c of children) c.kill();
    await sluice?.stop();
  });

  it('shows SYNCED, STALE and NACKED per node, the NACK text with -o wide and per node', async () => {
    const synced = await node('node-synced');
    synced.client.ack(synced.first);
    const nacking = await node('node-nacking');
    nacking.client.nack(nacking.first, 'route echo: no such cluster (test)');
    await node('node-stale'); // never answers
    await eventually(async () => {
      const nodes = (await sluice.api('GET', '/v1/fleet')).body.nodes as { id: string; types: Record<string, { ackedVersion: string | null; lastNack: unknown }> }[];
      return nodes.length === 3 && nodes.find((n) => n.id === 'node-synced')?.types[RDS]?.ackedVersion && nodes.find((n) => n.id === 'node-nacking')?.types[RDS]?.lastNack;
    });

    const table = await cli('fleet');
    expect(table.code).toBe(0);
    const rows = table.stdout.split('\n');
    expect(rows[0]).toMatch(/^NODE\s+CLUSTER\s+AGENT\s+LDS\s+RDS\s+CDS\s+EDS$/);
    expect(rows.find((r) => r.startsWith('node-synced'))).toMatch(/grpc-node-js\/1\.14\.0\s+-\s+SYNCED\s+-\s+-$/);
    expect(rows.find((r) => r.startsWith('node-stale'))).toMatch(/-\s+STALE\s+-\s+-$/);
    expect(rows.find((r) => r.startsWith('node-nacking'))).toMatch(/-\s+NACKED\s+-\s+-$/);
    expect(table.stdout).not.toContain('no such cluster');
    expect(table.stdout).toContain('1 node(s) NACKed');

    const wide = await cli('fleet', '-o', 'wide');
    expect(wide.stdout.split('\n').find((r) => r.startsWith('node-nacking'))).toContain('RDS: route echo: no such cluster (test)');
    const one = await cli('fleet', 'node-nacking');
    expect(one.stdout).toMatch(/RDS\s+NACKED/);
    expect(one.stdout).toMatch(/Last RDS NACK \(version \S+, .+\):\n\s+route echo: no such cluster \(test\)/);
    const json = JSON.parse((await cli('fleet', '-o', 'json')).stdout);
    expect(json.nodes.map((n: { id: string }) => n.id)).toEqual(['node-nacking', 'node-stale', 'node-synced']);
    expect((await cli('fleet', 'no-such-node')).code).toBe(1);
  });

  it('rollback --wait exits 3 when a node does not acknowledge, and names it', async () => {
    expect((await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 20 }, { pause: {} }] })).status).toBe(201);
    const rb = await cli('rollout', 'rollback', 'echo', '--reason', 'silent node', '--wait', '--timeout', '1s');
    expect(rb.code).toBe(3);
    expect(rb.stdout).toMatch(/node-stale\s+\d+\s+pending/);
    expect(rb.stdout).toMatch(/NOT acknowledged within 1s: .*node-stale pending/);
    expect(rb.stderr).toContain('not acknowledged');
    // The rollback itself happened: the server's state says so.
    expect((await sluice.api('GET', '/v1/rollouts/echo')).body.phase).toBe('RolledBack');
    // -o json prints the server's answer and still exits 3.
    await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 20 }, { pause: {} }] });
    const json = await cli('rollout', 'rollback', 'echo', '--wait', '--timeout', '500ms', '-o', 'json');
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout).fleet.acknowledged).toBe(false);
  });

  it('status --watch without a terminal prints one line per change and exits 0 when promoted', async () => {
    for (const s of streams.splice(0)) s.cancel(); // no silent nodes: weights are acknowledged at once
    await eventually(async () => (await sluice.api('GET', '/v1/fleet')).body.nodes.length === 0);
    expect((await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }] })).status).toBe(201);
    const watch = spawnCli(['rollout', 'status', 'echo', '--watch', '--server', server]);
    children.push(watch);
    const exited = exitOf(watch);
    await eventually(() => /echo Paused step 2\/4/.test(watch.output()), 20_000);
    expect((await sluice.api('POST', '/v1/rollouts/echo/promote', {})).status).toBe(200);
    await eventually(() => /WeightSet step 3\/4 v1=50% v2=50%/.test(watch.output()), 20_000);
    expect((await sluice.api('POST', '/v1/rollouts/echo/promote', { full: true })).status).toBe(200);
    expect((await exited).code).toBe(0);
    const lines = watch.output().trim().split('\n');
    expect(lines[0]).toMatch(/^\S+Z echo Created v1=100% v2=0% by=\S+ reason=/);
    expect(lines.at(-1)).toMatch(/echo Promoted .*v2=100%/);
    // One line per history entry, none repeated, no screen control characters.
    expect(new Set(lines).size).toBe(lines.length);
    expect(watch.output()).not.toContain('\x1b');
  });

  it('status --watch exits 5 when the rollout is rolled back, at once when it already was', async () => {
    // The promotion above made v2 the stable version: this rollout goes back to v1.
    expect((await sluice.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v1', steps: [{ setWeight: 10 }, { pause: {} }] })).status).toBe(201);
    const watch = spawnCli(['rollout', 'status', 'echo', '-w', '--server', server]);
    children.push(watch);
    const exited = exitOf(watch);
    await eventually(() => /echo Paused step 2\/2/.test(watch.output()), 20_000);
    await sluice.api('POST', '/v1/rollouts/echo/rollback', { reason: 'watch test' });
    expect((await exited).code).toBe(5);
    expect(watch.output()).toMatch(/echo RolledBack .*reason="watch test"/);
    const again = await cli('rollout', 'status', 'echo', '--watch');
    expect(again.code).toBe(5);
  });
});
