// Bounds on untrusted input over real gRPC: each limit is refused with a status that names it,
// unknown types leave nothing behind, and the server keeps serving well-behaved clients while
// others hit the limits.
import * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { selfMetrics } from '../../src/telemetry/self-metrics.js';
import { WindowedStats } from '../../src/telemetry/window.js';
import { DEFAULT_LIMITS, grpcServerOptions } from '../../src/xds/limits.js';
import { channel, fetch, perTypePath, struct } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, EDS, cluster, eventually, startXds } from './fixtures.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const LIMITS = {
  maxNamesPerRequest: 5,
  maxSubscribedNamesPerStream: 8,
  maxResourceNameBytes: 20,
  maxNodeIdBytes: 16,
  maxNodeMetadataBytes: 64,
  maxNodeBytes: 256,
  maxRequestBytes: 4096,
  maxConcurrentStreamsPerConnection: 2,
};

const names = (n: number, prefix = 'n') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Every client's final status as "CODE: details" (all at once: a missing one costs one timeout). */
async function statuses(clients: { statusWithin(ms: number): Promise<grpc.StatusObject> }[]): Promise<string[]> {
  const settled = await Promise.allSettled(clients.map((c) => c.statusWithin(5000)));
  return settled.map((s) => (s.status === 'fulfilled' ? `${GrpcStatus[s.value.code]}: ${s.value.details}` : String(s.reason)));
}

describe('limits', () => {
  it('has documented defaults and hands grpc-js the transport ones', () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxNamesPerRequest: 10_000,
      maxSubscribedNamesPerStream: 20_000,
      maxResourceNameBytes: 1024,
      maxNodeIdBytes: 512,
      maxNodeMetadataBytes: 65_536,
      maxNodeBytes: 131_072,
      maxRequestBytes: 4_194_304,
      maxConcurrentStreamsPerConnection: 1000,
    });
    expect(grpcServerOptions(DEFAULT_LIMITS)).toMatchObject({
      'grpc.max_receive_message_length': 4_194_304,
      'grpc.max_concurrent_streams': 1000,
    });
  });

  it('refuses each request beyond a limit with a status that names the limit', async () => {
    h = await startXds({ limits: LIMITS });
    h.set({ [CDS]: [cluster('a')] });
    const sotwNames = h.sotw({ node: { id: 'names' } });
    sotwNames.subscribe(CDS, names(6));
    const deltaNames = h.delta({ node: { id: 'delta-names' } });
    deltaNames.subscribe(CDS, names(3), { x: 'v', y: 'v', z: 'v' }); // initial versions count too
    const accumulating = h.delta({ node: { id: 'accumulating' } });
    accumulating.subscribe(CDS, names(3, 'a'));
    accumulating.subscribe(CDS, names(3, 'b'));
    accumulating.subscribe(CDS, names(3, 'c'));
    const overTypes = h.sotw({ node: { id: 'over-types' } });
    overTypes.subscribe(CDS, names(5));
    overTypes.subscribe(EDS, names(5));
    const longName = h.sotw({ node: { id: 'long-name' } });
    longName.subscribe(CDS, ['x'.repeat(21)]);
    const longId = h.sotw({ node: { id: 'x'.repeat(17) } });
    longId.subscribe(CDS, ['a']);
    const longCluster = h.delta({ node: { id: 'ok', cluster: 'c'.repeat(17) } });
    longCluster.subscribe(CDS, ['a']);
    const bigMetadata = h.sotw({ node: { id: 'big-md', metadata: struct({ blob: 'm'.repeat(80) }) } });
    bigMetadata.subscribe(CDS, ['a']);
    const bigNode = h.sotw({ node: { id: 'big-node', client_features: names(40, 'feature.') } });
    bigNode.subscribe(CDS, ['a']);
    const bigRequest = h.sotw({ node: { id: 'big-request' } });
    bigRequest.send({ type_url: CDS, resource_names: ['a'], version_info: 'v'.repeat(5000) });

    expect(await statuses([sotwNames, deltaNames, accumulating, overTypes, longName, longId, longCluster, bigMetadata, bigNode, bigRequest])).toEqual([
      'RESOURCE_EXHAUSTED: the request names 6 resources; at most 5 per request (maxNamesPerRequest)',
      'RESOURCE_EXHAUSTED: the request names 6 resources; at most 5 per request (maxNamesPerRequest)',
      'RESOURCE_EXHAUSTED: the stream would be subscribed to 9 resource names; at most 8 per stream (maxSubscribedNamesPerStream)',
      'RESOURCE_EXHAUSTED: the stream would be subscribed to 10 resource names; at most 8 per stream (maxSubscribedNamesPerStream)',
      'INVALID_ARGUMENT: a resource name of 21 bytes ("xxxxxxxxxxxxxxxxxxxxx"…); at most 20 (maxResourceNameBytes)',
      'INVALID_ARGUMENT: node.id is 17 bytes; at most 16 (maxNodeIdBytes)',
      'INVALID_ARGUMENT: node.cluster is 17 bytes; at most 16 (maxNodeIdBytes)',
      expect.stringMatching(/^INVALID_ARGUMENT: node\.metadata is \d+ bytes encoded; at most 64 \(maxNodeMetadataBytes\)$/),
      expect.stringMatching(/^INVALID_ARGUMENT: node is \d+ bytes encoded; at most 256 \(maxNodeBytes\)$/),
      expect.stringMatching(/^RESOURCE_EXHAUSTED: Received message larger than max \(\d+ vs 4096\)$/),
    ]);
    expect(h.xds.fleet()).toEqual([]);

    await expect(fetch(h.port, perTypePath('cluster', 'Clusters', 'Fetch'), { node: { id: 'f' }, type_url: CDS, resource_names: names(6) })).rejects.toMatchObject({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: 'the request names 6 resources; at most 5 per request (maxNamesPerRequest)',
    });
  });

  it('answers an unknown type URL with INVALID_ARGUMENT naming it, and keeps no state or metrics series for it', async () => {
    h = await startXds({ limits: LIMITS });
    const metrics = selfMetrics({ xds: h.xds, cache: h.cache, rollouts: () => [], telemetryReports: { lrs: 0, metrics_service: 0 }, telemetryDropped: {}, telemetryWindows: new WindowedStats(), serviceProblems: () => new Map() });
    h.set({ [CDS]: [cluster('a')] });
    const c = h.sotw({ node: { id: 'curious' } });
    c.subscribe(CDS, ['a']);
    c.ack(await c.next());
    await eventually(() => expect(h.fleetNode('curious')?.types[CDS]?.ackedVersion).not.toBeNull());
    c.subscribe('type.googleapis.com/some.Unknown', ['x']);
    const delta = h.delta({ node: { id: 'curious-delta' } });
    delta.subscribe('type.googleapis.com/other.Unknown', ['x']);
    const got = await statuses([c, delta]);
    expect(got[0]).toMatch(/^INVALID_ARGUMENT: type_url "type.googleapis.com\/some.Unknown" is not served; served: .*envoy\.config\.cluster\.v3\.Cluster/);
    expect(got[1]).toMatch(/^INVALID_ARGUMENT: type_url "type.googleapis.com\/other.Unknown" is not served/);
    const text = await metrics.metrics();
    expect(text).toContain('sluice_xds_acks_total{type="Cluster"} 1');
    expect(text).not.toMatch(/Unknown/);
  });

  it('lets a connection carry only maxConcurrentStreamsPerConnection streams at once', async () => {
    h = await startXds({ limits: LIMITS });
    h.set({ [CDS]: [cluster('a')] });
    const shared = channel(h.port);
    try {
      const [s1, s2, s3] = ['s1', 's2', 's3'].map((id) => h.sotw({ node: { id }, channel: shared }));
      for (const s of [s1!, s2!]) {
        s.subscribe(CDS, ['a']);
        expect((await s.next()).names).toEqual(['a']);
      }
      s3!.subscribe(CDS, ['a']);
      await s3!.expectNothing(300); // held back by HTTP/2 until a stream ends
      await s1!.close();
      expect((await s3!.next()).names).toEqual(['a']);
    } finally {
      shared.close();
    }
  });

  it('keeps serving other streams while clients hit the limits', async () => {
    h = await startXds({ limits: { ...LIMITS, maxConcurrentStreamsPerConnection: 100 } });
    h.set({ [CDS]: [cluster('echo-v1', 1, 0, ['echo'])] });
    const good = h.sotw({ node: { id: 'good' } });
    good.subscribe(CDS, ['echo-v1']);
    good.ack(await good.next());
    await eventually(() => expect(h.xds.ownerStatus('echo').counts.acked).toBe(1));

    // Abusers on shared connections, each refused, over and over, while the good client works.
    const conns = [channel(h.port), channel(h.port)];
    const abusers: { statusWithin(ms: number): Promise<grpc.StatusObject> }[] = [];
    let stop = false;
    const abuse = (async () => {
      for (let round = 0; !stop && round < 50; round++) {
        const batch = [
          h.sotw({ node: { id: `a${round}` }, channel: conns[0] }),
          h.delta({ node: { id: `b${round}` }, channel: conns[1] }),
          h.sotw({ node: { id: `c${round}`, metadata: struct({ blob: 'm'.repeat(200) }) }, channel: conns[0] }),
          h.delta({ node: { id: `d${round}` }, channel: conns[1] }),
        ];
        batch[0]!.subscribe(CDS, names(50));
        batch[1]!.subscribe(CDS, names(6));
        batch[2]!.subscribe(CDS, ['echo-v1']);
        batch[3]!.subscribe('type.googleapis.com/x.Y', ['z']);
        abusers.push(...batch);
        await Promise.all(batch.map((b) => b.statusWithin(5000)));
      }
    })();
    try {
      for (let gen = 2; gen <= 6; gen++) {
        h.set({ [CDS]: [cluster('echo-v1', gen, 0, ['echo'])] });
        const waiting = h.xds.awaitOwner('echo', { timeoutMs: 20_000 });
        const r = await good.next(10_000);
        expect(r.resources[0]!.value).toMatchObject({ connect_timeout: { seconds: String(gen) } });
        good.ack(r);
        expect(await waiting).toMatchObject({ timedOut: false, streams: [{ node: 'good', state: 'acked' }] });
      }
    } finally {
      stop = true;
      await abuse;
      for (const c of conns) c.close();
    }
    const refused = await statuses(abusers);
    expect(refused.length).toBeGreaterThan(0);
    for (const s of refused) expect(s).toMatch(/^(RESOURCE_EXHAUSTED|INVALID_ARGUMENT): .*(maxNamesPerRequest|maxNodeMetadataBytes|is not served)/);
  });
});
