// Wiring only: builds the parts and connects them.
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/app.js';
import { AuditLog } from './api/audit.js';
import { ApiTokens } from './api/tokens.js';
import { fleetRoutes } from './api/fleet-routes.js';
import { serviceRoutes } from './api/services-routes.js';
import { eventRoutes } from './api/events-routes.js';
import { openApiRoutes } from './api/openapi.js';
import { dashboardRoutes } from './api/dashboard-routes.js';
import { rolloutRoutes } from './api/rollout-routes.js';
import { metricsRoutes } from './api/metrics-routes.js';
import { statusRoutes } from './api/status-routes.js';
import { WebhookNotifier } from './alerts/webhook.js';
import { Analyzer } from './analysis/analyzer.js';
import { PrometheusProviders } from './analysis/prometheus.js';
import { parseDuration } from './model/duration.js';
import { clusterName } from './model/service.js';
import { kindOfGroup, NodeGroups } from './reconcile/node-groups.js';
import { Reconciler } from './reconcile/reconciler.js';
import { RolloutScheduler } from './rollout/scheduler.js';
import { StateWriter } from './state/writer.js';
import { selfMetrics } from './telemetry/self-metrics.js';
import { Telemetry } from './telemetry/telemetry.js';
import { EnvoyKind } from './translate/envoy.js';
import { ScopedEnvoyKind } from './translate/envoy-scoped.js';
import { GrpcKind } from './translate/grpc.js';
import { Translator } from './translate/translate.js';
import type { Config } from './config.js';
import { FileStore } from './store/file-store.js';
import { ResourceCache } from './xds/cache.js';
import { XdsServer } from './xds/server.js';
import { TypeUrl } from './xds/protos.js';

export interface Sluice {
  xdsPort: number;
  httpPort: number;
  /** The REST API's Fastify instance (routes, inject). */
  http: FastifyInstance;
  xds: XdsServer;
  state: StateWriter;
  scheduler: RolloutScheduler;
  reconciler: Reconciler;
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
  // The data dir is exclusive (a second server refuses to start); if another process takes the
  // lock anyway, writes fail and /readyz says so, while the last good config keeps being served.
  const store = await FileStore.open(config.dataDir, {
    log: log.child({ component: 'store' }),
    onLockLost: (err) => log.fatal({ err }, 'lost the data dir lock: changes are refused until restarted'),
  });
  // Credentials and the audit trail next: a bad tokens file stops the start, not the first request.
  const tokens = config.apiTokens || config.apiToken ? ApiTokens.open({ file: config.apiTokens, legacyToken: config.apiToken, log: log.child({ component: 'api' }) }) : undefined;
  const audit = await AuditLog.open(config.auditLog ?? path.join(config.dataDir, 'audit.log'), log.child({ component: 'audit' }));
  const prometheus = new PrometheusProviders(config.prometheus);
  const cache = new ResourceCache(`sluice@${process.pid}`);
  // A node's cache group: its kind of client, narrowed to the services it asks for.
  const groups = new NodeGroups();
  const xds = new XdsServer({
    cache,
    log: log.child({ component: 'xds' }),
    groupOf: (node) => groups.groupOf(node),
    limits: {
      maxNamesPerRequest: config.xdsMaxNamesPerRequest,
      maxSubscribedNamesPerStream: config.xdsMaxSubscribedNames,
      maxNodeMetadataBytes: config.xdsMaxNodeMetadataBytes,
      maxRequestBytes: config.xdsMaxRequestBytes,
      maxConcurrentStreamsPerConnection: config.xdsMaxStreamsPerConnection,
    },
  });

  // Desired state flows one way: writer -> reconciler (translate -> cache) -> streams.
  const envoyListener = { name: 'sluice_http', address: config.envoyListenerAddress, port: config.envoyListenerPort };
  const translator = new Translator([
    new GrpcKind(),
    config.envoyRoutes === 'scoped' ? new ScopedEnvoyKind(envoyListener) : new EnvoyKind(envoyListener),
  ]);
  const reconciler = new Reconciler({ cache, translator, groups, log: log.child({ component: 'reconcile' }) });
  xds.on('groupActive', (group) => reconciler.activate(group));
  xds.on('groupIdle', (group) => reconciler.deactivate(group));
  const state = new StateWriter({
    store,
    log: log.child({ component: 'state' }),
    check: (candidate, changed) => reconciler.check(candidate, changed),
  });
  state.on('change', (change) => reconciler.apply(change));

  const lrsIntervalMs = parseDuration(config.lrsInterval);
  // Load reports and Envoy stats count only for clusters the reporting node was sent.
  const telemetry = new Telemetry({
    log: log.child({ component: 'telemetry' }),
    lrsIntervalMs,
    mayReport: (node, cluster) => xds.wasSent(node, TypeUrl.Cluster, cluster),
    maxNodeIdBytes: xds.limits.maxNodeIdBytes,
  });
  const analyzer = new Analyzer({
    windows: telemetry.windows,
    telemetrySince: telemetry.since,
    reportLagMs: lrsIntervalMs,
    clusterOf: (service, version) => clusterName(service, version, state.state.services.get(service) ?? { versions: {}, stable: version }),
    prometheus,
  });
  const scheduler = new RolloutScheduler({
    sink: state,
    fleet: {
      awaitService: async (service, opts) => (await xds.awaitOwner(service, opts)).streams.map((s) => ({ ...s, kind: kindOfGroup(s.group) })),
    },
    published: (revision) => reconciler.whenPublished(revision),
    log: log.child({ component: 'rollout' }),
    analyzer,
  });
  state.on('change', (change) => scheduler.onChange(change.services));
  await state.load();
  reconciler.publishNow();
  const rollouts = () => [...state.state.rollouts.values()];
  const webhook = config.webhookUrl
    ? new WebhookNotifier({ url: config.webhookUrl, format: config.webhookFormat, secret: config.webhookSecret, log: log.child({ component: 'webhook' }) }, rollouts())
    : undefined;
  if (webhook) state.on('rollout', (r) => webhook.onChange(r));
  const metrics = selfMetrics({
    xds,
    cache,
    rollouts,
    telemetryReports: telemetry.reports,
    telemetryDropped: telemetry.dropped,
    telemetryWindows: telemetry.windows,
    serviceProblems: () => reconciler.serviceErrors(),
  });
  scheduler.start();

  const grpcServer = new grpc.Server(xds.grpcServerOptions());
  xds.register(grpcServer);
  telemetry.register(grpcServer);
  const xdsPort = await xds.bind(grpcServer, config.host, config.xdsPort, xdsCredentials(config));

  let started = false;
  const problems = () => reconciler.serviceErrors();
  const api = buildApi({
    log,
    tokens,
    audit,
    host: config.host,
    metricsPublic: config.metricsPublic,
    ready: () => {
      if (!started) return { ready: false, reason: 'starting' };
      const p = state.persistence();
      if (!p.ok)
        return { ready: false, reason: p.unpersisted.length ? `rolled back but not persisted: ${p.unpersisted.join(', ')}` : `store: ${p.store.message ?? 'not writable'}` };
      return { ready: true };
    },
    routes: [
      serviceRoutes(state, problems),
      rolloutRoutes(state, scheduler, prometheus),
      fleetRoutes(xds),
      statusRoutes(state, problems, () => store.quarantined()),
      eventRoutes(state),
      openApiRoutes(),
      dashboardRoutes(),
      metricsRoutes(metrics),
    ],
  });
  await api.listen({ host: config.host, port: config.httpPort });
  const address = api.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  started = true;
  log.info({ xdsPort, httpPort, host: config.host, dataDir: config.dataDir }, 'sluice started');

  return {
    xdsPort,
    httpPort,
    http: api,
    xds,
    state,
    scheduler,
    reconciler,
    telemetry,
    async stop() {
      started = false;
      scheduler.close();
      webhook?.close();
      state.close();
      reconciler.close();
      await api.close();
      tokens?.close();
      await audit.close();
      await xds.close(500);
      await store.close();
      log.info('sluice stopped');
    },
  };
}
