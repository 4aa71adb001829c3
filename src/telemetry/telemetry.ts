// The data plane's own telemetry, as analysis reads it: receivers on the xDS gRPC port feed one
// fleet-wide, per-cluster windowed store. Reports are untrusted: a sender must be allowed to claim
// the node it reports as (authorize), and a node may report only for the clusters it was sent
// (mayReport), so invented cluster names cost nothing.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { XdsPeer } from '../xds/peer.js';
import { CumulativeDeltas } from './envoy-stats.js';
import { loadStatsService, serveLoadStats } from './lrs.js';
import { metricsService, serveMetrics } from './metrics-service.js';
import type { LoadDelta, WindowOptions } from './window.js';
import { WindowedStats } from './window.js';

export interface TelemetryOptions extends WindowOptions {
  log: Logger;
  /** The load reporting interval asked of clients. */
  lrsIntervalMs: number;
  /** Why a stream from `peer` may not report as `node` (it ends with PERMISSION_DENIED), or
   *  undefined. Asked on every message. Default: everyone may. */
  authorize?: (node: { id: string; cluster: string }, peer: XdsPeer) => string | undefined;
  /** Whether `nodeId`, reporting from `peer`, may report traffic for `cluster`. Sluice passes
   *  "a stream of that node, from the same identity, was sent the cluster". Default: every
   *  report is taken. */
  mayReport?: (nodeId: string, cluster: string, peer: XdsPeer) => boolean;
  /** Longest node id accepted on a telemetry stream, in bytes (default 512, as for xDS). */
  maxNodeIdBytes?: number;
}

export type ReportSource = 'lrs' | 'metrics_service';
/** Why a per-cluster report was not taken: the node was never sent the cluster, the windows
 *  already hold as many clusters as they may (WindowOptions.maxClusters), or the sender may not
 *  report as that node. */
export type DropReason = 'cluster_not_sent' | 'cluster_limit' | 'node_refused';

export class Telemetry {
  readonly windows: WindowedStats;
  /** Per-cluster reports received, by source (Sluice's own /metrics). */
  readonly reports: Record<ReportSource, number> = { lrs: 0, metrics_service: 0 };
  /** Per-cluster reports dropped, by reason (one number each: no series per cluster name). */
  readonly dropped: Record<DropReason, number> = { cluster_not_sent: 0, cluster_limit: 0, node_refused: 0 };
  /** When receiving started: windows reaching further back are incomplete. */
  readonly since = Date.now();
  private readonly deltas = new CumulativeDeltas();

  constructor(private readonly opts: TelemetryOptions) {
    this.windows = new WindowedStats(opts);
  }

  register(server: grpc.Server): void {
    const log = this.opts.log;
    const maxNodeIdBytes = this.opts.maxNodeIdBytes ?? 512;
    const mayReport = this.opts.mayReport;
    const authorize = this.opts.authorize ?? (() => undefined);
    const accepts = (cluster: string, node: string, peer: XdsPeer) => {
      if (!mayReport || mayReport(node, cluster, peer)) return true;
      this.dropped.cluster_not_sent++;
      return false;
    };
    const refused = (clusters: number) => {
      this.dropped.node_refused += clusters;
    };
    const report = (source: ReportSource) => (cluster: string, node: string, delta: LoadDelta) => {
      this.reports[source]++;
      if (!this.windows.add(cluster, node, delta)) this.dropped.cluster_limit++;
    };
    server.addService(loadStatsService(), {
      StreamLoadStats: (call: Parameters<typeof serveLoadStats>[0]) =>
        serveLoadStats(call, { intervalMs: this.opts.lrsIntervalMs, maxNodeIdBytes, authorize, accepts, refused, report: report('lrs'), log }),
    });
    server.addService(metricsService(), {
      StreamMetrics: (call: Parameters<typeof serveMetrics>[0], done: Parameters<typeof serveMetrics>[1]) =>
        serveMetrics(call, done, { deltas: this.deltas, maxNodeIdBytes, authorize, accepts, refused, report: report('metrics_service'), log }),
    });
  }
}
