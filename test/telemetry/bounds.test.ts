// Telemetry from untrusted nodes over real gRPC: reports are taken only for clusters the
// reporting node was sent over xDS (XdsServer.wasSent), everything else is dropped and counted
// once; node ids are bounded.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { ResourceCache } from '../../src/xds/cache.js';
import { messageType, TypeUrl } from '../../src/xds/protos.js';
import { XdsServer } from '../../src/xds/server.js';
import { SotwClient } from '../support/ads-client.js';
import { cluster, eventually } from '../xds/fixtures.js';

const identity = (b: Buffer) => b;
const encode = (type: string, value: object) => {
  const t = messageType(type);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
};

interface Rig {
  port: number;
  xds: XdsServer;
  telemetry: Telemetry;
  cache: ResourceCache;
  close(): Promise<void>;
}

/** One gRPC server carrying xDS and telemetry, wired as main.ts wires them. */
async function rig(): Promise<Rig> {
  const log = pino({ level: 'silent' });
  const cache = new ResourceCache();
  const xds = new XdsServer({ cache, log, groupOf: () => 'g', limits: { maxNodeIdBytes: 64 } });
  const telemetry = new Telemetry({ log, lrsIntervalMs: 1000, maxNodeIdBytes: 64, mayReport: (n, c) => xds.wasSent(n, TypeUrl.Cluster, c) });
  const server = new grpc.Server(xds.grpcServerOptions());
  xds.register(server);
  telemetry.register(server);
  const port = await xds.bind(server, '127.0.0.1', 0, grpc.ServerCredentials.createInsecure());
  return { port, xds, telemetry, cache, close: () => xds.close(500) };
}

function lrsStream(port: number) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest('/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats', identity, identity);
  const answered = new Promise<void>((resolve) => call.once('data', () => resolve()));
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  return {
    answered,
    status,
    send(value: object) {
      call.write(encode('envoy.service.load_stats.v3.LoadStatsRequest', value));
    },
    close() {
      call.end();
      client.close();
    },
  };
}

const stats = (name: string, ok: number) => ({
  cluster_name: name,
  upstream_locality_stats: [{ locality: { zone: 'a' }, total_successful_requests: ok, total_error_requests: 0, total_issued_requests: ok }],
});

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

describe('telemetry bounds', () => {
  it('takes load reports only for clusters the node was sent; drops the rest into one counter', async () => {
    r = await rig();
    r.cache.set('g', { [TypeUrl.Cluster]: [cluster('echo-v1'), cluster('echo-v2')] });
    const xds = SotwClient.open(r.port, { node: { id: 'grpc-1' } });
    xds.subscribe(TypeUrl.Cluster, ['echo-v1']);
    xds.ack(await xds.next());
    await eventually(() => expect(r!.xds.wasSent('grpc-1', TypeUrl.Cluster, 'echo-v1')).toBe(true));

    const lrs = lrsStream(r.port);
    lrs.send({ node: { id: 'grpc-1' }, cluster_stats: [] });
    await lrs.answered;
    const invented = Array.from({ length: 500 }, (_, i) => stats(`invented-${i}`, 1));
    lrs.send({ cluster_stats: [stats('echo-v1', 7), stats('echo-v2', 5), ...invented] });
    const stranger = lrsStream(r.port); // a node with no xDS stream at all
    stranger.send({ node: { id: 'stranger' }, cluster_stats: [stats('echo-v1', 3)] });
    await eventually(() => expect(r!.telemetry.dropped.cluster_not_sent).toBe(502));
    expect(r.telemetry.windows.clusters()).toEqual(['echo-v1']);
    expect(r.telemetry.windows.query('echo-v1', Date.now() - 60_000, Date.now() + 1000)).toMatchObject({ requests: 7, nodes: 1 });
    expect(r.telemetry.reports.lrs).toBe(1);
    lrs.close();
    stranger.close();
    await xds.close();
  });

  it('keeps nothing from an Envoy metrics stream for clusters it was not sent', async () => {
    r = await rig();
    r.cache.set('g', { [TypeUrl.Cluster]: [cluster('echo-v1')] });
    const xds = SotwClient.open(r.port, { node: { id: 'envoy-1', user_agent_name: 'envoy' } });
    xds.subscribe(TypeUrl.Cluster, []);
    xds.ack(await xds.next());
    await eventually(() => expect(r!.xds.wasSent('envoy-1', TypeUrl.Cluster, 'echo-v1')).toBe(true));

    const client = new grpc.Client(`127.0.0.1:${r.port}`, grpc.credentials.createInsecure());
    const done = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.makeClientStreamRequest('/envoy.service.metrics.v3.MetricsService/StreamMetrics', identity, identity, (err) => resolve(err));
      const family = (name: string, value: number) => ({ name: `cluster.${name}.upstream_rq_2xx`, type: 'COUNTER', metric: [{ counter: { value } }] });
      const flush = (v: number, first: boolean) =>
        call.write(
          encode('envoy.service.metrics.v3.StreamMetricsMessage', {
            ...(first ? { identifier: { node: { id: 'envoy-1' } } } : {}),
            envoy_metrics: [family('echo-v1', v), family('made-up', v)],
          }),
        );
      flush(10, true);
      flush(25, false);
      call.end();
    });
    expect(await done).toBeNull();
    expect(r.telemetry.windows.clusters()).toEqual(['echo-v1']);
    expect(r.telemetry.windows.query('echo-v1', Date.now() - 60_000, Date.now() + 1000).requests).toBe(15);
    expect(r.telemetry.dropped.cluster_not_sent).toBe(2);
    client.close();
    await xds.close();
  });

  it('ends a telemetry stream whose node id is too long', async () => {
    r = await rig();
    const lrs = lrsStream(r.port);
    lrs.send({ node: { id: 'x'.repeat(65) }, cluster_stats: [stats('echo-v1', 1)] });
    expect(await lrs.status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'node.id is 65 bytes; at most 64' });
    lrs.close();
  });
});
