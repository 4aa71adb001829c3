// envoy.service.metrics.v3.MetricsService/StreamMetrics: Envoy's metrics service sink streams
// every stat at each flush (stats_flush_interval, 5 s by default), the node only in the first
// message. Client streaming: the server answers once, when Envoy ends the stream.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { XdsPeer } from '../xds/peer.js';
import { peerOf } from '../xds/peer.js';
import { messageType } from '../xds/protos.js';
import { Service, serviceDefinition } from '../xds/services.js';
import type { CumulativeDeltas, MetricFamily } from './envoy-stats.js';
import { readClusterStats } from './envoy-stats.js';
import { nodeTooLong } from './lrs.js';
import type { LoadDelta } from './window.js';

interface StreamMetricsMessage {
  identifier?: { node?: { id?: string; cluster?: string } };
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
  /** Why `peer` may not report as `node` (the stream ends with PERMISSION_DENIED), or undefined.
   *  Asked on every message, so a policy change applies to open streams. */
  authorize(node: { id: string; cluster: string }, peer: XdsPeer): string | undefined;
  /** Whether the node's report for the cluster, from `peer`, is taken; others are dropped before
   *  anything is remembered for them. */
  accepts(cluster: string, node: string, peer: XdsPeer): boolean;
  /** A message of `clusters` per-cluster reports was not taken: its sender was refused. */
  refused(clusters: number): void;
  report(cluster: string, node: string, delta: LoadDelta): void;
  log: Logger;
}

export function serveMetrics(
  call: grpc.ServerReadableStream<StreamMetricsMessage, Buffer>,
  done: grpc.sendUnaryData<Buffer>,
  opts: MetricsServiceOptions,
): void {
  let node: { id: string; cluster: string } | undefined;
  let ended = false;
  const peer = peerOf(call);
  const end = (code: grpc.status, details: string) => {
    ended = true;
    done({ code, details });
  };
  call.on('data', (msg: StreamMetricsMessage) => {
    if (ended) return;
    const claimed = node ?? { id: msg.identifier?.node?.id || call.getPeer(), cluster: msg.identifier?.node?.cluster ?? '' };
    if (node === undefined) {
      const tooLong = nodeTooLong(claimed, opts.maxNodeIdBytes);
      if (tooLong) return end(grpc.status.INVALID_ARGUMENT, tooLong);
    }
    const refusal = opts.authorize(claimed, peer);
    if (refusal !== undefined) {
      opts.refused(readClusterStats(msg.envoy_metrics ?? []).size);
      opts.log.warn({ peer: peer.address, problem: refusal }, 'Envoy metrics refused');
      return end(grpc.status.PERMISSION_DENIED, refusal);
    }
    if (node === undefined) {
      node = claimed;
      opts.log.debug({ node }, 'metrics stream opened');
    }
    const flush = readClusterStats(msg.envoy_metrics ?? []);
    for (const cluster of flush.keys()) if (!opts.accepts(cluster, node.id, peer)) flush.delete(cluster);
    if (flush.size === 0) return; // nothing kept for a node that may report nothing
    const deltas = opts.deltas.update(node.id, flush);
    for (const [cluster, delta] of deltas) opts.report(cluster, node.id, delta);
  });
  call.on('end', () => {
    if (!ended) done(null, EMPTY_RESPONSE);
  });
  call.on('error', () => undefined); // a client going away is not our error
}
