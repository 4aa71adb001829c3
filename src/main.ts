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
import { FleetSummaryFeed, fleetSummaryRoutes } from './api/fleet-list.js';
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
import { NodeGroups } from './reconcile/node-groups.js';
import { Reconciler } from './reconcile/reconciler.js';
import { RolloutScheduler } from './rollout/scheduler.js';
import { ReloadingCertificates } from './security/certificates.js';
import { PolicyFile } from './security/policy-file.js';
import { announceXdsSecurity, XdsAccess } from './security/xds-access.js';
import { StateWriter } from './state/writer.js';
import { selfMetrics } from './telemetry/self-metrics.js';
import { Telemetry } from './telemetry/telemetry.js';
import { EnvoyKind } from './translate/envoy.js';
import { ScopedEnvoyKind } from './translate/envoy-scoped.js';
import { GrpcKind } from './translate/grpc.js';
import { Translator } from './translate/translate.js';
import type { Config } from './config.js';
import { defaultReplicaId, etcdPassword } from './config.js';
import { Replication } from './replica/replication.js';
import type { EtcdStore } from './store/etcd-store.js';
import { FileStore } from './store/file-store.js';
import type { Store } from './store/store.js';
import { ResourceCache } from './xds/cache.js';
import { XdsServer } from './xds/server.js';
import { TypeUrl } from './xds/protos.js';

/** Longest wait of the leader's analysis for the other replicas' telemetry of a window. */
const TELEMETRY_WAIT_MS = 3000;

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
  replication: Replication;
  stop(): Promise<void>;
}

/** The desired state's store: etcd shared by replicas (--store), or the file store in --data-dir. */
async function openStore(config: Config, log: Logger): Promise<{ store: Store; etcd?: EtcdStore }> {
  if (config.store) {
    const read = (file?: string) => (file ? fs.readFileSync(file) : undefined);
    const password = etcdPassword(config);
    // Loaded only when used: the etcd client takes a while to load (every CLI command loads this file).
    const { EtcdStore } = await import('./store/etcd-store.js');
    const etcd = await EtcdStore.open({
      hosts: config.store.hosts,
      prefix: config.etcdPrefix,
      callTimeoutMs: parseDuration(config.etcdTimeout),
      tls: config.etcdCa || config.etcdCert ? { ca: read(config.etcdCa), cert: read(config.etcdCert), key: read(config.etcdKey) } : undefined,
      auth: config.etcdUser && password ? { username: config.etcdUser, password } : undefined,
      log: log.child({ component: 'store' }),
    });
    return { store: etcd, etcd };
  }
  // The data dir is exclusive (a second server refuses to start); if another process takes the
  // lock anyway, writes fail and /readyz says so, while the last good config keeps being served.
  const store = await FileStore.open(config.dataDir, {
    log: log.child({ component: 'store' }),
    onLockLost: (err) => log.fatal({ err }, 'lost the data dir lock: changes are refused until restarted'),
  });
  return { store };
}

export async function startSluice(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Sluice> {
  const replicaId = config.replicaId ?? defaultReplicaId();
  const { store, etcd } = await openStore(config, log);
  // Credentials and the audit trail next: a bad tokens file stops the start, not the first request.
  const tokens = config.apiTokens || config.apiToken ? ApiTokens.open({ file: config.apiTokens, legacyToken: config.apiToken, log: log.child({ component: 'api' }) }) : undefined;
  const audit = await AuditLog.open(config.auditLog ?? path.join(config.dataDir, 'audit.log'), log.child({ component: 'audit' }));
  const prometheus = new PrometheusProviders(config.prometheus);
  // xDS security: TLS files (reloaded on change), the access policy (reloaded on change).
  const xdsTls =
    config.xdsTlsCert && config.xdsTlsKey
      ? ReloadingCertificates.open({ cert: config.xdsTlsCert, key: config.xdsTlsKey, ca: config.xdsTlsCa }, log.child({ component: 'xds-tls' }))
      : undefined;
  const policyFile = config.xdsPolicy ? PolicyFile.open(config.xdsPolicy, log.child({ component: 'xds-policy' })) : undefined;
  const access = new XdsAccess({ mutualTls: !!(xdsTls && config.xdsTlsCa), policy: policyFile && (() => policyFile.current), log });
  announceXdsSecurity(log, { tls: !!xdsTls, mutualTls: !!(xdsTls && config.xdsTlsCa), policy: config.xdsPolicy, host: config.host });
  const cache = new ResourceCache(`sluice@${process.pid}`);
  // A node's cache group: its kind of client, narrowed to the services it asks for and may read.
  const groups = new NodeGroups(access.readPolicy);
  const xds = new XdsServer({
    cache,
    log: log.child({ component: 'xds' }),
    groupOf: (node, peer) => groups.groupOf(node, peer),
    authorize: access.authorize,
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
  xds.on('groupActive', (group) => {
    groups.activated(group);
    reconciler.activate(group);
  });
  // A new policy applies to connected nodes: those it refuses, or scopes differently, reconnect.
  policyFile?.on('change', () => {
    const ended = xds.endStreams((s) => access.endingAfterPolicyChange(s, groups.groupIdOf(s.node, s.peer)));
    log.info({ ended }, 'xDS policy applied to connected streams');
  });
  xds.on('groupIdle', (group) => reconciler.deactivate(group));
  const state = new StateWriter({
    store,
    log: log.child({ component: 'state' }),
    check: (candidate, changed) => reconciler.check(candidate, changed),
  });
  state.on('change', (change) => reconciler.apply(change));

  const lrsIntervalMs = parseDuration(config.lrsInterval);
  // Load reports and Envoy stats count only from a sender that may claim the node, and only for
  // clusters a stream of that node, opened by the same identity, was sent.
  const telemetry = new Telemetry({
    log: log.child({ component: 'telemetry' }),
    lrsIntervalMs,
    authorize: access.authorize,
    mayReport: (node, cluster, peer) => xds.wasSent(node, TypeUrl.Cluster, cluster, (p) => access.sameIdentity(p, peer)),
    maxNodeIdBytes: xds.limits.maxNodeIdBytes,
  });
  const clusterOf = (service: string, version: string) => clusterName(service, version, state.state.services.get(service) ?? { versions: {}, stable: version });
  // Several replicas: one leader schedules; fleet ACKs and telemetry of every replica count.
  const replication = new Replication({
    etcd,
    id: replicaId,
    ttlSeconds: parseDuration(config.leaseTtl) / 1000,
    xds,
    writer: state,
    published: (revision) => reconciler.whenPublished(revision),
    windows: telemetry.windows,
    clusterOf,
    reportLagMs: lrsIntervalMs,
    log: log.child({ component: 'replica', replica: replicaId }),
  });
  const analyzer = new Analyzer({
    windows: replication.windows,
    telemetrySince: telemetry.since,
    reportLagMs: lrsIntervalMs,
    clusterOf,
    prometheus,
  });
  const scheduler = new RolloutScheduler({
    // The leader's commits carry its election key (the fence): a deposed leader changes nothing.
    sink: {
      get state() {
        return state.state;
      },
      rolloutEvent: (service, event, by) => {
        const fence = replication.leadership.fence();
        if (!fence) return Promise.reject(new Error('this replica is not the leader: it does not schedule'));
        return state.rolloutEvent(service, event, by, { fence });
      },
    },
    fleet: replication.fleet,
    published: (revision) => reconciler.whenPublished(revision),
    log: log.child({ component: 'rollout' }),
    analyzer: {
      earliestClose: (spec, startedAt) => analyzer.earliestClose(spec, startedAt),
      measure: async (rollout, run, spec, to) => {
        await replication.awaitTelemetry(to, TELEMETRY_WAIT_MS);
        return analyzer.measure(rollout, run, spec, to);
      },
    },
    active: false,
  });
  state.on('change', (change) => scheduler.onChange(change.services));
  replication.leadership.on('elected', () => scheduler.start());
  replication.leadership.on('lost', () => scheduler.suspend());
  await state.load();
  reconciler.publishNow();
  const rollouts = () => [...state.state.rollouts.values()];
  const webhook = config.webhookUrl
    ? new WebhookNotifier({ url: config.webhookUrl, format: config.webhookFormat, secret: config.webhookSecret, log: log.child({ component: 'webhook' }) }, rollouts())
    : undefined;
  // Each transition is announced by the replica that made it; the others only keep count.
  if (webhook) state.on('rollout', (r, origin) => webhook.onChange(r, origin === 'local'));
  const metrics = selfMetrics({
    xds,
    cache,
    rollouts,
    telemetryReports: telemetry.reports,
    telemetryDropped: telemetry.dropped,
    telemetryWindows: telemetry.windows,
    serviceProblems: () => reconciler.serviceErrors(),
  });
  await replication.start();

  const grpcServer = new grpc.Server(xds.grpcServerOptions());
  xds.register(grpcServer);
  telemetry.register(grpcServer);
  const xdsPort = await xds.bind(grpcServer, config.host, config.xdsPort, xdsTls?.credentials() ?? grpc.ServerCredentials.createInsecure());

  let started = false;
  const problems = () => reconciler.serviceErrors();
  const fleetSummary = new FleetSummaryFeed(() => replication.fleet.nodes().nodes, xds);
  // Nodes of other replicas count too: their summaries change the counts as local events do.
  replication.presence?.on('update', () => fleetSummary.changed());
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
      fleetRoutes(replication.fleet),
      fleetSummaryRoutes(fleetSummary),
      statusRoutes(state, problems, () => store.quarantined(), () => replication.status()),
      eventRoutes(state, fleetSummary),
      openApiRoutes(),
      dashboardRoutes(),
      metricsRoutes(metrics),
    ],
  });
  await api.listen({ host: config.host, port: config.httpPort });
  const address = api.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  started = true;
  log.info(
    { xdsPort, httpPort, host: config.host, ...(etcd ? { store: etcd.describe(), replica: replicaId } : { dataDir: config.dataDir }) },
    'sluice started',
  );

  return {
    xdsPort,
    httpPort,
    http: api,
    xds,
    state,
    scheduler,
    reconciler,
    telemetry,
    replication,
    async stop() {
      started = false;
      scheduler.close();
      await replication.close(); // resigns: another replica takes over at once
      webhook?.close();
      state.close();
      reconciler.close();
      await api.close();
      fleetSummary.close();
      tokens?.close();
      await audit.close();
      await xds.close(500);
      policyFile?.close();
      xdsTls?.close();
      await store.close();
      log.info('sluice stopped');
    },
  };
}
