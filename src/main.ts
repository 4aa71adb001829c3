// Wiring only: builds the parts and connects them.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { Logger } from 'pino';
import { buildApi } from './api/app.js';
import { fleetRoutes } from './api/fleet-routes.js';
import { serviceRoutes } from './api/services-routes.js';
import { eventRoutes } from './api/events-routes.js';
import { openApiRoutes } from './api/openapi.js';
import { dashboardRoutes } from './api/dashboard-routes.js';
import { rolloutRoutes } from './api/rollout-routes.js';
import { metricsRoutes } from './api/metrics-routes.js';
import { WebhookNotifier } from './alerts/webhook.js';
import { Analyzer } from './analysis/analyzer.js';
import { parseDuration } from './model/duration.js';
import { clusterName } from './model/service.js';
import { selfMetrics } from './telemetry/self-metrics.js';
import { Telemetry } from './telemetry/telemetry.js';
import { RolloutController } from './rollout/controller.js';
import type { Config } from './config.js';
import { flavourOf, Publisher } from './control/publisher.js';
import { ServiceRegistry } from './control/services.js';
import { FileStore } from './store/file-store.js';
import { ResourceCache } from './xds/cache.js';
import { XdsServer } from './xds/server.js';
import { TypeUrl } from './xds/protos.js';

export interface Sluice {
  xdsPort: number;
  httpPort: number;
  xds: XdsServer;
  registry: ServiceRegistry;
  rollouts: RolloutController;
  telemetry: Telemetry;
  stop(): Promise<void>;
}

function xdsCredentials(config: Config): grpc.ServerCredentials {
  if (!config.xdsTlsCert || !config.xdsTlsKey) return grpc.ServerCredentials.createInsecure();
  const ca = config.xdsTlsCa ? fs.readFileSync(config.xdsTlsCa) : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: fs.readFileSync(config.xdsTlsCert), private_key: fs.readFileSync(config.xdsTlsKey) }],
    !!ca, // with a CA, clients must present a certificate it signed (mutual TLS)
  );
}

export async function startSluice(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Sluice> {
  const store = await FileStore.open(config.dataDir);
  const cache = new ResourceCache(`sluice@${process.pid}`);
  const xds = new XdsServer({ cache, log: log.child({ component: 'xds' }), groupOf: flavourOf });

  let rollouts: RolloutController | undefined;
  const publisher = new Publisher({
    cache,
    log,
    envoyListener: { name: 'sluice_http', address: config.envoyListenerAddress, port: config.envoyListenerPort },
    routings: () => rollouts!.routings(),
  });
  const registry = new ServiceRegistry(store, () => publisher.schedule());
  const lrsIntervalMs = parseDuration(config.lrsInterval);
  const telemetry = new Telemetry({ log: log.child({ component: 'telemetry' }), lrsIntervalMs });
  const analyzer = new Analyzer({
    windows: telemetry.windows,
    telemetrySince: telemetry.since,
    reportLagMs: lrsIntervalMs,
    clusterOf: (service, version) => clusterName(service, version, registry.get(service) ?? { versions: {}, stable: version }),
  });
  rollouts = new RolloutController({
    store,
    services: registry,
    fleet: { awaitRoutes: (ms) => xds.awaitConvergence(TypeUrl.RouteConfiguration, ms) },
    log: log.child({ component: 'rollout' }),
    publish: (urgent) => publisher.schedule(urgent),
    analyzer,
  });
  await registry.load();
  await rollouts.load();
  const webhook = config.webhookUrl
    ? new WebhookNotifier({ url: config.webhookUrl, format: config.webhookFormat, log: log.child({ component: 'webhook' }) }, rollouts.list())
    : undefined;
  if (webhook) rollouts.on('change', (state) => webhook.onChange(state));
  const metrics = selfMetrics({ xds, cache, rollouts: () => rollouts.list(), telemetryReports: telemetry.reports, telemetryWindows: telemetry.windows });
  publisher.publishNow();
  rollouts.start();

  const grpcServer = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': 100_000,
  });
  xds.register(grpcServer);
  telemetry.register(grpcServer);
  const xdsPort = await xds.bind(grpcServer, config.host, config.xdsPort, xdsCredentials(config));

  let ready = false;
  const api = buildApi({
    log,
    apiToken: config.apiToken,
    ready: () => ready,
    routes: [serviceRoutes(registry), rolloutRoutes(rollouts), fleetRoutes(xds), eventRoutes(rollouts), openApiRoutes(), dashboardRoutes(), metricsRoutes(metrics)],
  });
  await api.listen({ host: config.host, port: config.httpPort });
  const address = api.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  ready = true;
  log.info({ xdsPort, httpPort, host: config.host, dataDir: config.dataDir }, 'sluice started');

  return {
    xdsPort,
    httpPort,
    xds,
    registry,
    rollouts,
    telemetry,
    async stop() {
      ready = false;
      rollouts.close();
      webhook?.close();
      publisher.close();
      await api.close();
      await xds.close(500);
      await store.close();
      log.info('sluice stopped');
    },
  };
}
