// What Envoy's metrics service sink sends, for tests: per-cluster stats kept the way Envoy keeps
// them (cumulative counters, the upstream_rq_time histogram) and a real gRPC client stream of
// StreamMetricsMessages (messages built with protobufjs from the vendored protos).
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../../src/xds/protos.js';

const identity = (b: Buffer) => b;
const encode = (type: string, value: object) => {
  const t = messageType(type);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
};

/** Envoy's default upstream_rq_time buckets (ms). */
export const BOUNDS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** One cluster's stats as an Envoy keeps them: cumulative counters and histogram. */
export class EnvoyCluster {
  ok = 0;
  failed = 0;
  count = 0;
  cumulative = BOUNDS.map(() => 0);
  constructor(readonly name: string) {}

  /** `n` requests answered after `latencyMs`, `errors` of them with a 5xx. */
  serve(n: number, latencyMs: number, errors = 0): void {
    this.ok += n - errors;
    this.failed += errors;
    this.count += n;
    BOUNDS.forEach((b, i) => {
      if (latencyMs <= b) this.cumulative[i]! += n;
    });
  }

  families(): object[] {
    return [
      { name: `cluster.${this.name}.upstream_rq_2xx`, type: 'COUNTER', metric: [{ counter: { value: this.ok } }] },
      { name: `cluster.${this.name}.upstream_rq_5xx`, type: 'COUNTER', metric: [{ counter: { value: this.failed } }] },
      { name: `cluster.${this.name}.upstream_rq_completed`, type: 'COUNTER', metric: [{ counter: { value: this.count } }] },
      // Envoy emits histograms as a summary and as a histogram by default.
      { name: `cluster.${this.name}.upstream_rq_time`, type: 'SUMMARY', metric: [{ summary: { sample_count: this.count, quantile: [{ quantile: 0.99, value: 1 }] } }] },
      {
        name: `cluster.${this.name}.upstream_rq_time`,
        type: 'HISTOGRAM',
        metric: [
          {
            histogram: {
              sample_count: this.count,
              sample_sum: 0,
              bucket: BOUNDS.map((upper_bound, i) => ({ upper_bound, cumulative_count: this.cumulative[i] })),
            },
          },
        ],
      },
    ];
  }
}

/** A client streaming StreamMetricsMessages the way Envoy's metrics service sink does. */
export function envoyMetricsStream(port: number, nodeId: string) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  let finished!: (err: grpc.ServiceError | null) => void;
  const done = new Promise<grpc.ServiceError | null>((resolve) => (finished = resolve));
  const call = client.makeClientStreamRequest('/envoy.service.metrics.v3.MetricsService/StreamMetrics', identity, identity, (err) => finished(err));
  let first = true;
  return {
    flush(clusters: EnvoyCluster[]) {
      // The node identifier is in the first message of the stream only.
      call.write(
        encode('envoy.service.metrics.v3.StreamMetricsMessage', {
          ...(first ? { identifier: { node: { id: nodeId, cluster: 'edge', user_agent_name: 'envoy' } } } : {}),
          envoy_metrics: clusters.flatMap((c) => c.families()),
        }),
      );
      first = false;
    },
    async end() {
      call.end();
      const err = await done;
      client.close();
      return err;
    },
  };
}
