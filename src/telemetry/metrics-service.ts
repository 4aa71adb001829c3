// envoy.service.metrics.v3.MetricsService/StreamMetrics: Envoy's metrics service sink streams
// every stat at each flush (stats_flush_interval, 5 s by default), the node only in the first
// message. Client streaming: the server answers once, when Envoy ends the stream.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { messageType } from '../xds/protos.js';
import type { CumulativeDeltas, MetricFamily } from './envoy-stats.js';
import { readClusterStats } from './envoy-stats.js';
import type { LoadDelta } from './window.js';

const METRICS_SERVICE = 'envoy.service.metrics.v3.MetricsService';

interface StreamMetricsMessage {
  identifier?: { node?: { id?: string } };
  envoy_metrics?: MetricFamily[];
}

const message = messageType('envoy.service.metrics.v3.StreamMetricsMessage');
const EMPTY_RESPONSE = Buffer.alloc(0); // StreamMetricsResponse has no fields

export const metricsMethod: grpc.MethodDefinition<StreamMetricsMessage, Buffer> = {
  path: `/${METRICS_SERVICE}/StreamMetrics`,
  requestStream: true,
  responseStream: false,
  requestSerialize: () => Buffer.alloc(0), // server side: never used
  requestDeserialize: (buf) =>
    message.toObject(message.decode(buf), { longs: Number, enums: String, defaults: false }) as StreamMetricsMessage,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

export interface MetricsServiceOptions {
  deltas: CumulativeDeltas;
  report(cluster: string, node: string, delta: LoadDelta): void;
  log: Logger;
}

export function serveMetrics(
  call: grpc.ServerReadableStream<StreamMetricsMessage, Buffer>,
  done: grpc.sendUnaryData<Buffer>,
  opts: MetricsServiceOptions,
): void {
  let node: string | undefined;
  call.on('data', (msg: StreamMetricsMessage) => {
    if (node === undefined) {
      node = msg.identifier?.node?.id || call.getPeer();
      opts.log.debug({ node }, 'metrics stream opened');
    }
    const deltas = opts.deltas.update(node, readClusterStats(msg.envoy_metrics ?? []));
    for (const [cluster, delta] of deltas) opts.report(cluster, node, delta);
  });
  call.on('end', () => done(null, EMPTY_RESPONSE));
  call.on('error', () => undefined); // a client going away is not our error
}
