// envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats: proxyless gRPC clients
// (clusters carry `lrs_server: {self: {}}`) and Envoys with a load_stats_config report, per
// cluster, the calls that finished since their previous report. The server speaks once: it
// asks for every cluster at the configured interval; the client then reports on its own timer.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { XdsPeer } from '../xds/peer.js';
import { peerOf } from '../xds/peer.js';
import { messageType } from '../xds/protos.js';
import { Service, serviceDefinition } from '../xds/services.js';
import type { LoadDelta } from './window.js';

interface LoadStatsRequest {
  node?: { id?: string; cluster?: string };
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
  /** Why `peer` may not report as `node` (the stream ends with PERMISSION_DENIED), or undefined.
   *  Asked on every message, so a policy change applies to open streams. */
  authorize(node: { id: string; cluster: string }, peer: XdsPeer): string | undefined;
  /** Whether the node's report for the cluster, from `peer`, is taken; others are dropped. */
  accepts(cluster: string, node: string, peer: XdsPeer): boolean;
  /** A message of `clusters` per-cluster reports was not taken: its sender was refused. */
  refused(clusters: number): void;
  report(cluster: string, node: string, delta: LoadDelta): void;
  log: Logger;
}

/** Why a claimed node is refused for its size, or undefined (as for xDS: id and cluster are bounded). */
export function nodeTooLong(node: { id: string; cluster: string }, maxBytes: number): string | undefined {
  for (const [field, value] of [['node.id', node.id], ['node.cluster', node.cluster]] as const) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > maxBytes) return `${field} is ${bytes} bytes; at most ${maxBytes}`;
  }
  return undefined;
}

export function serveLoadStats(call: grpc.ServerDuplexStream<LoadStatsRequest, Buffer>, opts: LrsOptions): void {
  // The node comes in the first request only.
  let node: { id: string; cluster: string } | undefined;
  let ended = false;
  const peer = peerOf(call);
  const end = (code: grpc.status, details: string) => {
    ended = true;
    call.emit('error', { code, details }); // grpc-js sends a status for an emitted error
  };
  call.on('data', (req: LoadStatsRequest) => {
    if (ended) return;
    const claimed = node ?? { id: req.node?.id || call.getPeer(), cluster: req.node?.cluster ?? '' };
    if (node === undefined) {
      const tooLong = nodeTooLong(claimed, opts.maxNodeIdBytes);
      if (tooLong) return end(grpc.status.INVALID_ARGUMENT, tooLong);
    }
    const refusal = opts.authorize(claimed, peer);
    if (refusal !== undefined) {
      opts.refused(req.cluster_stats?.length ?? 0);
      opts.log.warn({ peer: peer.address, problem: refusal }, 'load reports refused');
      return end(grpc.status.PERMISSION_DENIED, refusal);
    }
    if (node === undefined) {
      node = claimed;
      const interval = { seconds: Math.floor(opts.intervalMs / 1000), nanos: (opts.intervalMs % 1000) * 1_000_000 };
      call.write(Buffer.from(response.encode(response.fromObject({ send_all_clusters: true, load_reporting_interval: interval })).finish()));
      opts.log.debug({ node }, 'load reporting stream opened');
    }
    // One pass over the report (bounded by the message size limit of the gRPC server).
    for (const cs of req.cluster_stats ?? []) {
      if (!cs.cluster_name || !opts.accepts(cs.cluster_name, node.id, peer)) continue;
      const delta = { successful: 0, errors: 0 };
      for (const l of cs.upstream_locality_stats ?? []) {
        delta.successful += l.total_successful_requests ?? 0;
        delta.errors += l.total_error_requests ?? 0;
      }
      opts.report(cs.cluster_name, node.id, delta);
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => undefined); // a client going away is not our error
}
