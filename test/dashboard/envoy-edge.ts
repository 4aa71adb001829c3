// An Envoy edge proxy as Sluice sees one, for the dashboard scenario: an ADS stream that
// subscribes like a state-of-the-world client and ACKs every response (so rollouts wait for it
// as for any node), and a metrics-service stream that reports its clusters' request counts,
// errors and latency histogram every second, as Envoy's metrics service sink does. The traffic
// it reports follows the weights Sluice currently routes.
import * as grpc from '@grpc/grpc-js';
import { messageType, TypeUrl, unpackAny } from '../../src/xds/protos.js';
import { SotwClient } from '../support/ads-client.js';

const identity = (b: Buffer) => b;
/** Envoy's default upstream_rq_time buckets (ms). */
const BOUNDS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export interface VersionTraffic {
  cluster: string;
  /** Percent of the edge's requests this cluster gets now. */
  weight: () => number;
  latencyMs: number;
  errorRate: number;
}

class ClusterStats {
  ok = 0;
  failed = 0;
  cumulative = BOUNDS.map(() => 0);
  constructor(readonly t: VersionTraffic) {}

  serve(requests: number): void {
    const errors = Math.round(requests * this.t.errorRate);
    this.ok += requests - errors;
    this.failed += errors;
    // Most requests near the typical latency, a tail up to four times it.
    for (const [share, factor] of [[0.9, 1], [0.09, 2], [0.01, 4]] as const) {
      const n = Math.round(requests * share);
      BOUNDS.forEach((b, i) => {
        if (this.t.latencyMs * factor <= b) this.cumulative[i]! += n;
      });
    }
  }

  families(): object[] {
    const name = this.t.cluster;
    const count = this.ok + this.failed;
    return [
      { name: `cluster.${name}.upstream_rq_2xx`, type: 'COUNTER', metric: [{ counter: { value: this.ok } }] },
      { name: `cluster.${name}.upstream_rq_5xx`, type: 'COUNTER', metric: [{ counter: { value: this.failed } }] },
      { name: `cluster.${name}.upstream_rq_completed`, type: 'COUNTER', metric: [{ counter: { value: count } }] },
      {
        name: `cluster.${name}.upstream_rq_time`,
        type: 'HISTOGRAM',
        metric: [{ histogram: { sample_count: count, sample_sum: 0, bucket: BOUNDS.map((upper_bound, i) => ({ upper_bound, cumulative_count: this.cumulative[i] })) } }],
      },
    ];
  }
}

export async function startEnvoyEdge(xdsPort: number, nodeId: string, traffic: VersionTraffic[], requestsPerSecond = 150): Promise<{ stop(): Promise<void> }> {
  const node = { id: nodeId, cluster: 'edge', user_agent_name: 'envoy', user_agent_version: '1.36.2' };
  const ads = SotwClient.open(xdsPort, { node });
  // Like Envoy: every cluster and listener, then the endpoints and route configurations they name.
  ads.subscribe(TypeUrl.Cluster, []);
  ads.subscribe(TypeUrl.Listener, []);
  const asked = new Map<string, string>();
  const follow = (type: string, names: string[]) => {
    const key = [...new Set(names)].sort().join(',');
    if (!names.length || asked.get(type) === key) return;
    asked.set(type, key);
    ads.subscribe(type, key.split(','));
  };
  let running = true;
  const acking = (async () => {
    while (running) {
      const r = await ads.next(1000).catch(() => undefined);
      if (!r) continue;
      ads.ack(r);
      if (r.type_url === TypeUrl.Cluster) follow(TypeUrl.ClusterLoadAssignment, r.resources.map((c) => edsName(c.value)));
      if (r.type_url === TypeUrl.Listener) follow(TypeUrl.RouteConfiguration, r.resources.flatMap((l) => routeConfigNames(l.value)));
    }
  })();

  const client = new grpc.Client(`127.0.0.1:${xdsPort}`, grpc.credentials.createInsecure());
  const call = client.makeClientStreamRequest('/envoy.service.metrics.v3.MetricsService/StreamMetrics', identity, identity, () => undefined);
  const t = messageType('envoy.service.metrics.v3.StreamMetricsMessage');
  const clusters = traffic.map((v) => new ClusterStats(v));
  let first = true;
  const timer = setInterval(() => {
    for (const c of clusters) c.serve(Math.round((requestsPerSecond * c.t.weight()) / 100));
    const message = { ...(first ? { identifier: { node } } : {}), envoy_metrics: clusters.flatMap((c) => c.families()) };
    call.write(Buffer.from(t.encode(t.fromObject(message)).finish()));
    first = false;
  }, 1000);

  return {
    async stop() {
      clearInterval(timer);
      running = false;
      await acking;
      call.end();
      client.close();
      await ads.close();
    },
  };
}

type Obj = Record<string, unknown>;

function edsName(cluster: Obj): string {
  const eds = cluster.eds_cluster_config as Obj | undefined;
  return String(eds?.service_name || cluster.name);
}

/** The route configurations the listener's HTTP connection managers ask RDS for. */
function routeConfigNames(listener: Obj): string[] {
  const names: string[] = [];
  for (const chain of (listener.filter_chains as Obj[] | undefined) ?? [])
    for (const f of (chain.filters as Obj[] | undefined) ?? []) {
      const any = f.typed_config as { type_url: string; value: Uint8Array } | undefined;
      const rds = any && (unpackAny(any).rds as Obj | undefined);
      if (typeof rds?.route_config_name === 'string') names.push(rds.route_config_name);
    }
  return names;
}
