// The telemetry receivers on a real Sluice, fed by real gRPC clients that send what Envoy's
// metrics service sink and a load-reporting client send (messages built with protobufjs).
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import { messageType, TypeUrl } from '../../src/xds/protos.js';
import { SotwClient } from '../support/ads-client.js';
import { EnvoyCluster, envoyMetricsStream } from '../support/envoy-metrics.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, startTestSluice } from '../support/sluice.js';

const identity = (b: Buffer) => b;
const encode = (type: string, value: object) => {
  const t = messageType(type);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
};

describe('telemetry receivers', () => {
  let sluice: TestSluice;
  const xdsClients: SotwClient[] = [];

  /** Connects `nodeId` over xDS and takes every cluster of its flavour: a node's reports count
   *  only for clusters it was sent. Returns the cluster names, for the service when given. */
  async function sentClusters(nodeId: string, userAgent: string, service?: string): Promise<string[]> {
    const c = SotwClient.open(sluice.xdsPort, { node: { id: nodeId, user_agent_name: userAgent } });
    xdsClients.push(c);
    c.subscribe(TypeUrl.Cluster, []);
    const r = await c.next();
    c.ack(r);
    return r.names.filter((n) => !service || n.startsWith(`${service}-`)).sort();
  }

  beforeAll(async () => {
    sluice = await startTestSluice({ lrsInterval: '1500ms' });
    const service = {
      versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 1 }] }, v2: { endpoints: [{ address: '127.0.0.1', port: 2 }] } },
      stable: 'v1',
    };
    // Each test reports for a service of its own, so windows never mix between tests.
    for (const name of ['echo', 'lrs', 'ms']) expect((await sluice.api('PUT', `/v1/services/${name}`, service)).status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all(xdsClients.map((c) => c.close()));
    await sluice?.stop();
  });

  it('load reporting: asks for all clusters at the configured interval and sums reports per cluster', async () => {
    const [lrsCluster] = await sentClusters('grpc-1', 'grpc-node-js', 'lrs');
    expect(lrsCluster).toBeDefined();
    const client = new grpc.Client(`127.0.0.1:${sluice.xdsPort}`, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest('/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats', identity, identity);
    const answer = new Promise<Record<string, unknown>>((resolve) =>
      call.once('data', (b: Buffer) => {
        const t = messageType('envoy.service.load_stats.v3.LoadStatsResponse');
        resolve(t.toObject(t.decode(b), { longs: Number }));
      }),
    );
    const stats = (ok: number, bad: number) => ({
      cluster_name: lrsCluster,
      upstream_locality_stats: [
        { locality: { zone: 'a' }, total_successful_requests: ok, total_error_requests: bad, total_issued_requests: ok + bad },
        { locality: { zone: 'b' }, total_successful_requests: 1, total_error_requests: 0, total_issued_requests: 1 },
      ],
      load_report_interval: { seconds: 1 },
    });
    call.write(encode('envoy.service.load_stats.v3.LoadStatsRequest', { node: { id: 'grpc-1' }, cluster_stats: [] }));
    expect(await answer).toEqual({ send_all_clusters: true, load_reporting_interval: { seconds: 1, nanos: 500_000_000 } });
    call.write(encode('envoy.service.load_stats.v3.LoadStatsRequest', { cluster_stats: [stats(97, 3)] }));
    call.write(encode('envoy.service.load_stats.v3.LoadStatsRequest', { cluster_stats: [stats(9, 1)] }));
    const w = await eventually(() => {
      const s = sluice.telemetry.windows.query(lrsCluster!, Date.now() - 5000, Date.now() + 1000);
      return s.requests === 112 ? s : undefined;
    });
    expect(w).toMatchObject({ successful: 108, errors: 4, nodes: 1 });
    call.end();
    client.close();
  });

  it('metrics service: turns each Envoy’s cumulative stats into fleet-wide deltas with latency', async () => {
    const [msCluster] = await sentClusters('envoy-a', 'envoy', 'ms');
    expect(await sentClusters('envoy-b', 'envoy', 'ms')).toContain(msCluster);
    const a = envoyMetricsStream(sluice.xdsPort, 'envoy-a');
    const b = envoyMetricsStream(sluice.xdsPort, 'envoy-b');
    const ca = new EnvoyCluster(msCluster!);
    const cb = new EnvoyCluster(msCluster!);
    ca.serve(10_000, 3); // history from before Sluice listened: the baseline, not counted
    cb.serve(500, 3);
    a.flush([ca]);
    b.flush([cb]);
    ca.serve(100, 3, 4);
    cb.serve(100, 200, 0);
    a.flush([ca]);
    b.flush([cb]);
    const w = await eventually(() => {
      const s = sluice.telemetry.windows.query(msCluster!, Date.now() - 5000, Date.now() + 1000);
      return s.requests === 200 ? s : undefined;
    });
    expect(w).toMatchObject({ successful: 196, errors: 4, nodes: 2 });
    expect([...w.latency].filter(([, n]) => n > 0)).toEqual([
      [5, 100],
      [250, 100],
    ]);
    expect(await a.end()).toBeNull(); // the server answers when Envoy ends the stream
    expect(await b.end()).toBeNull();
  });

  it('metrics service: a canary whose p99 latency rises is rolled back with the measured values', async () => {
    const created = await sluice.api('POST', '/v1/rollouts', {
      service: 'echo',
      canary: 'v2',
      steps: [{ setWeight: 50 }, { pause: {} }],
      analysis: {
        interval: '1s',
        minRequests: 50,
        inconclusiveLimit: 10,
        metrics: [
          { name: 'p99', latencyP99: { maxMs: 100 } },
          { name: 'rise', latencyRise: { maxMs: 50 } },
        ],
      },
    });
    expect(created.status).toBe(201);
    const [stableName, canaryName] = await sentClusters('envoy-c', 'envoy', 'echo'); // v1, v2
    const envoy = envoyMetricsStream(sluice.xdsPort, 'envoy-c');
    const stable = new EnvoyCluster(stableName!);
    const canary = new EnvoyCluster(canaryName!);
    let canaryLatency = 8;
    const flusher = setInterval(() => {
      stable.serve(100, 8);
      canary.serve(100, canaryLatency);
      envoy.flush([stable, canary]);
    }, 200);
    try {
      const rollout = async () => (await sluice.api<RolloutState>('GET', '/v1/rollouts/echo')).body;
      await eventually(async () => (await rollout()).analysis!.measurements.some((m) => m.phase === 'Successful'), 10_000, 100);
      canaryLatency = 400;
      const rolledBack = await eventually(async () => {
        const r = await rollout();
        return r.phase === 'RolledBack' ? r : undefined;
      }, 10_000, 50);
      const entry = rolledBack.history.at(-1)!;
      expect(entry).toMatchObject({ event: 'RolledBack', by: 'analysis' });
      expect(entry.reason).toMatch(/p99: canary p99 latency \d+\.\dms > max 100ms/);
      expect(entry.reason).toMatch(/rise: canary p99 \d+\.\dms vs stable \d+\.\dms: rise \d+\.\dms > max 50ms/);
    } finally {
      clearInterval(flusher);
      await envoy.end();
    }
  });
});
