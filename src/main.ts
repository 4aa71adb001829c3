// Wiring only: builds the parts and connects them.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { Logger } from 'pino';
import { buildApi } from './api/app.js';
import { fleetRoutes } from './api/fleet-routes.js';
import { serviceRoutes } from './api/services-routes.js';
import type { Config } from './config.js';
import { flavourOf, Publisher } from './control/publisher.js';
import { ServiceRegistry } from './control/services.js';
import { FileStore } from './store/file-store.js';
import { stableRouting } from './translate/routing.js';
import { ResourceCache } from './xds/cache.js';
import { XdsServer } from './xds/server.js';

export interface Sluice {
  xdsPort: number;
  httpPort: number;
  xds: XdsServer;
  registry: ServiceRegistry;
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

  let registry: ServiceRegistry | undefined;
  const publisher = new Publisher({
    cache,
    log,
    envoyListener: { name: 'sluice_http', address: config.envoyListenerAddress, port: config.envoyListenerPort },
    routings: () => registry!.list().map(stableRouting),
  });
  registry = new ServiceRegistry(store, () => publisher.schedule());
  await registry.load();
  publisher.publishNow();

  const grpcServer = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': 100_000,
  });
  xds.register(grpcServer);
  const xdsPort = await xds.bind(grpcServer, config.host, config.xdsPort, xdsCredentials(config));

  let ready = false;
  const api = buildApi({
    log,
    apiToken: config.apiToken,
    ready: () => ready,
    routes: [serviceRoutes(registry), fleetRoutes(xds)],
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
    async stop() {
      ready = false;
      publisher.close();
      await api.close();
      await xds.close(500);
      await store.close();
      log.info('sluice stopped');
    },
  };
}
