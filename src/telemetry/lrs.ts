// envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats: proxyless gRPC clients
// (clusters carry `lrs_server: {self: {}}`) and Envoys with a load_stats_config report, per
// cluster, the calls that finished since their previous report. The server speaks once: it
// asks for every cluster at the configured interval; the client then reports on its own timer.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { messageType } from '../xds/protos.js';
import type { LoadDelta } from './window.js';

const LRS_SERVICE = 'envoy.service.load_stats.v3.LoadReportingService';

interface LoadStatsRequest {
  node?: { id?: string };
  cluster_stats?: {
    cluster_name?: string;
    upstream_locality_stats?: { total_successful_requests?: number; total_error_requests?: number }[];
  }[];
}

const request = messageType('envoy.service.load_stats.v3.LoadStatsRequest');
const response = messageType('envoy.service.load_stats.v3.LoadStatsResponse');

export const lrsMethod: grpc.MethodDefinition<LoadStatsRequest, Buffer> = {
  path: `/${LRS_SERVICE}/StreamLoadStats`,
  requestStream: true,
  responseStream: true,
  requestSerialize: () => Buffer.alloc(0), // server side: never used
  requestDeserialize: (buf) => request.toObject(request.decode(buf), { longs: Number, defaults: false }) as LoadStatsRequest,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

export interface LrsOptions {
  intervalMs: number;
  report(cluster: string, node: string, delta: LoadDelta): void;
  log: Logger;
}

export function serveLoadStats(call: grpc.ServerDuplexStream<LoadStatsRequest, Buffer>, opts: LrsOptions): void {
  // The node comes in the first request only.
  let node: string | undefined;
  call.on('data', (req: LoadStatsRequest) => {
    if (node === undefined) {
      node = req.node?.id || call.getPeer();
      const interval = { seconds: Math.floor(opts.intervalMs / 1000), nanos: (opts.intervalMs % 1000) * 1_000_000 };
      call.write(Buffer.from(response.encode(response.fromObject({ send_all_clusters: true, load_reporting_interval: interval })).finish()));
      opts.log.debug({ node }, 'load reporting stream opened');
    }
    for (const cs of req.cluster_stats ?? []) {
      if (!cs.cluster_name) continue;
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
