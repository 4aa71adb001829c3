// envoy.service.metrics.v3.MetricsService/StreamMetrics: Envoy's metrics service sink streams
// every stat at each flush (stats_flush_interval, 5 s by default), the node only in the first
// message. Client streaming: the server answers once, when Envoy ends the stream.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { messageType } from '../xds/protos.js';
import { Service, serviceDefinition } from '../xds/services.js';
import type { CumulativeDeltas, MetricFamily } from './envoy-stats.js';
import { readClusterStats } from './envoy-stats.js';
import type { LoadDelta } from './window.js';

interface StreamMetricsMessage {
  identifier?: { node?: { id?: string } };
  envoy_metrics?: MetricFamily[];
}

const message = messageType('envoy.service.metrics.v3.StreamMetricsMessage');
const EMPTY_RESPONSE = Buffer.alloc(0); // StreamMetricsResponse has no fields

/** The service as the .proto defines it, with protobufjs decoding and a pre-encoded answer. */
export function metricsService(): grpc.ServiceDefinition {
  return serviceDefinition(Service.metrics, {
    StreamMetrics: (buf) => message.toObject(message.decode(buf), { longs: Number, enums: String, defaults: false }) as StreamMetricsMessage,
  });
}

export interface MetricsServiceOptions {
  deltas: CumulativeDeltas;
  /** Longest node id accepted (bytes); a longer one ends the stream with INVALID_ARGUMENT. */
  maxNodeIdBytes: number;
  /** Whether the node's report for the cluster is taken; others are dropped before anything
   *  is remembered for them. */
  accepts(cluster: string, node: string): boolean;
  report(cluster: string, node: string, delta: LoadDelta): void;
  log: Logger;
}

export function serveMetrics(
  call: grpc.ServerReadableStream<StreamMetricsMessage, Buffer>,
  done: grpc.sendUnaryData<Buffer>,
  opts: MetricsServiceOptions,
): void {
  let node: string | undefined;
  let ended = false;
  call.on('data', (msg: StreamMetricsMessage) => {
    if (ended) return;
    if (node === undefined) {
      const id = msg.identifier?.node?.id || call.getPeer();
      const bytes = Buffer.byteLength(id, 'utf8');
      if (bytes > opts.maxNodeIdBytes) {
        ended = true;
        done({ code: grpc.status.INVALID_ARGUMENT, details: `node.id is ${bytes} bytes; at most ${opts.maxNodeIdBytes}` });
        return;
      }
      node = id;
      opts.log.debug({ node }, 'metrics stream opened');
    }
    const flush = readClusterStats(msg.envoy_metrics ?? []);
    for (const cluster of flush.keys()) if (!opts.accepts(cluster, node)) flush.delete(cluster);
    if (flush.size === 0) return; // nothing kept for a node that may report nothing
    const deltas = opts.deltas.update(node, flush);
    for (const [cluster, delta] of deltas) opts.report(cluster, node, delta);
  });
  call.on('end', () => {
    if (!ended) done(null, EMPTY_RESPONSE);
  });
  call.on('error', () => undefined); // a client going away is not our error
}
