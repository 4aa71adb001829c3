// The data plane's own telemetry, as analysis reads it: receivers on the xDS gRPC port feed one
// fleet-wide, per-cluster windowed store.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { CumulativeDeltas } from './envoy-stats.js';
import { lrsMethod, serveLoadStats } from './lrs.js';
import { metricsMethod, serveMetrics } from './metrics-service.js';
import type { LoadDelta, WindowOptions } from './window.js';
import { WindowedStats } from './window.js';

export interface TelemetryOptions extends WindowOptions {
  log: Logger;
  /** The load reporting interval asked of clients. */
  lrsIntervalMs: number;
}

export type ReportSource = 'lrs' | 'metrics_service';

export class Telemetry {
  readonly windows: WindowedStats;
  /** Per-cluster reports received, by source (Sluice's own /metrics). */
  readonly reports: Record<ReportSource, number> = { lrs: 0, metrics_service: 0 };
  /** When receiving started: windows reaching further back are incomplete. */
  readonly since = Date.now();
  private readonly deltas = new CumulativeDeltas();

  constructor(private readonly opts: TelemetryOptions) {
    this.windows = new WindowedStats(opts);
  }

  register(server: grpc.Server): void {
    const log = this.opts.log;
    const report = (source: ReportSource) => (cluster: string, node: string, delta: LoadDelta) => {
      this.reports[source]++;
      this.windows.add(cluster, node, delta);
    };
    server.addService(
      { StreamLoadStats: lrsMethod },
      {
        StreamLoadStats: (call: Parameters<typeof serveLoadStats>[0]) =>
          serveLoadStats(call, { intervalMs: this.opts.lrsIntervalMs, report: report('lrs'), log }),
      },
    );
    server.addService(
      { StreamMetrics: metricsMethod },
      {
        StreamMetrics: (call: Parameters<typeof serveMetrics>[0], done: Parameters<typeof serveMetrics>[1]) =>
          serveMetrics(call, done, { deltas: this.deltas, report: report('metrics_service'), log }),
      },
    );
  }
}
