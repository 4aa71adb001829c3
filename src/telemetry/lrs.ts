// envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats: proxyless gRPC clients
// (clusters carry `lrs_server: {self: {}}`) and Envoys with a load_stats_config report, per
// cluster, the calls that finished since their previous report. The server speaks once: it
// asks for every cluster at the configured interval; the client then reports on its own timer.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { messageType } from '../xds/protos.js';
import { Service, serviceDefinition } from '../xds/services.js';
import type { LoadDelta } from './window.js';

interface LoadStatsRequest {
  node?: { id?: string };
  cluster_stats?: {
    cluster_name?: string;
    upstream_locality_stats?: { total_successful_requests?: number; total_error_requests?: number }[];
  }[];
}

const request = messageType('envoy.service.load_stats.v3.LoadStatsRequest');
const response = messageType('envoy.service.load_stats.v3.LoadStatsResponse');

/** The service as the .proto defines it, with protobufjs decoding and pre-encoded answers. */
export function loadStatsService(): grpc.ServiceDefinition {
  return serviceDefinition(Service.loadStats, {
    StreamLoadStats: (buf) => request.toObject(request.decode(buf), { longs: Number, defaults: false }) as LoadStatsRequest,
  });
}

export interface LrsOptions {
  intervalMs: number;
  /** Longest node id accepted (bytes); a longer one ends the stream with INVALID_ARGUMENT. */
  maxNodeIdBytes: number;
  /** Whether the node's report for the cluster is taken; others are dropped. */
  accepts(cluster: string, node: string): boolean;
  report(cluster: string, node: string, delta: LoadDelta): void;
  log: Logger;
}

export function serveLoadStats(call: grpc.ServerDuplexStream<LoadStatsRequest, Buffer>, opts: LrsOptions): void {
  // The node comes in the first request only.
  let node: string | undefined;
  let ended = false;
  call.on('data', (req: LoadStatsRequest) => {
    if (ended) return;
    if (node === undefined) {
      const id = req.node?.id || call.getPeer();
      const bytes = Buffer.byteLength(id, 'utf8');
      if (bytes > opts.maxNodeIdBytes) {
        ended = true;
        // grpc-js sends a status for an emitted error.
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: `node.id is ${bytes} bytes; at most ${opts.maxNodeIdBytes}` });
        return;
      }
      node = id;
      const interval = { seconds: Math.floor(opts.intervalMs / 1000), nanos: (opts.intervalMs % 1000) * 1_000_000 };
      call.write(Buffer.from(response.encode(response.fromObject({ send_all_clusters: true, load_reporting_interval: interval })).finish()));
      opts.log.debug({ node }, 'load reporting stream opened');
    }
    // One pass over the report (bounded by the message size limit of the gRPC server).
    for (const cs of req.cluster_stats ?? []) {
      if (!cs.cluster_name || !opts.accepts(cs.cluster_name, node)) continue;
      const delta = { successful: 0, errors: 0 };
      for (const l of cs.upstream_locality_stats ?? []) {
        delta.successful += l.total_successful_requests ?? 0;
        delta.errors += l.total_error_requests ?? 0;
      }
      opts.report(cs.cluster_name, node, delta);
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => undefined); // a client going away is not our error
}
