// Shared by the xDS protocol tests: a real XdsServer on 127.0.0.1 over a fresh cache, small
// resource builders, and polling for state the server learns asynchronously.
import { pino } from 'pino';
import { ResourceCache } from '../../src/xds/cache.js';
import { encodeMessage, TypeUrl } from '../../src/xds/protos.js';
import type { XdsLimits } from '../../src/xds/limits.js';
import type { XdsNode } from '../../src/xds/node.js';
import type { OwnersSpec, Resource } from '../../src/xds/resource.js';
import { hashBytes, makeResource } from '../../src/xds/resource.js';
import { XdsServer } from '../../src/xds/server.js';
import type { NodeStatus } from '../../src/xds/server.js';
import type { OpenOptions } from '../support/ads-client.js';
import { DeltaClient, SotwClient } from '../support/ads-client.js';

export const GROUP = 'g';
export const CDS = TypeUrl.Cluster;
export const EDS = TypeUrl.ClusterLoadAssignment;
export const LDS = TypeUrl.Listener;
export const RDS = TypeUrl.RouteConfiguration;

const ADS = { ads: {}, resource_api_version: 'V3' };

/** An EDS cluster whose endpoints are the ClusterLoadAssignment of the same name. `timeout`
 *  changes its bytes (and so its version) without changing anything else. */
export function cluster(name: string, timeout = 1, padding = 0, owners?: OwnersSpec): Resource {
  return makeResource(
    CDS,
    name,
    encodeMessage('envoy.config.cluster.v3.Cluster', {
      name,
      ...(padding > 0 ? { alt_stat_name: 'x'.repeat(padding) } : {}),
      type: 'EDS',
      eds_cluster_config: { eds_config: ADS, service_name: name },
      connect_timeout: { seconds: timeout },
    }),
    { [EDS]: [name] },
    owners,
  );
}

export function endpoints(name: string, port = 8080, owners?: OwnersSpec): Resource {
  return makeResource(
    EDS,
    name,
    encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', {
      cluster_name: name,
      endpoints: [
        {
          load_balancing_weight: { value: 1 },
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }],
        },
      ],
    }),
    {},
    owners,
  );
}

/** A RouteConfiguration whose default route splits evenly over `clusters` (refs them). */
export function route(name: string, clusters: string[], owners?: OwnersSpec): Resource {
  const action =
    clusters.length === 1
      ? { cluster: clusters[0] }
      : { weighted_clusters: { clusters: clusters.map((c) => ({ name: c, weight: { value: 1 } })) } };
  return makeResource(
    RDS,
    name,
    encodeMessage('envoy.config.route.v3.RouteConfiguration', {
      name,
      virtual_hosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '' }, route: action }] }],
    }),
    { [CDS]: clusters },
    owners,
  );
}

/** One virtual host of a shared route configuration: its owner, the cluster it routes to and
 *  a timeout that changes its bytes (and so its fragment) without changing anything else. */
export interface VirtualHostSpec {
  owner: string;
  cluster: string;
  timeoutSeconds?: number;
}

/** A RouteConfiguration with one virtual host per owner, as Envoy nodes get one for every
 *  service: each owner's fragment is the hash of its virtual host's bytes. */
export function sharedRoute(name: string, hosts: VirtualHostSpec[]): Resource {
  const VHOST = 'envoy.config.route.v3.VirtualHost';
  const vhosts = hosts.map((h) => ({
    name: h.owner,
    domains: [h.owner],
    routes: [{ match: { prefix: '' }, route: { cluster: h.cluster, timeout: { seconds: h.timeoutSeconds ?? 15 } } }],
  }));
  const owners = Object.fromEntries(vhosts.map((v) => [v.name, hashBytes(encodeMessage(VHOST, v))]));
  return makeResource(
    RDS,
    name,
    encodeMessage('envoy.config.route.v3.RouteConfiguration', { name, virtual_hosts: vhosts }),
    { [CDS]: hosts.map((h) => h.cluster) },
    owners,
  );
}

/** A listener carrying only a name and a stat-free address; `port` changes its version. */
export function listener(name: string, port = 10000, routeName = name, owners?: OwnersSpec): Resource {
  return makeResource(
    LDS,
    name,
    encodeMessage('envoy.config.listener.v3.Listener', {
      name,
      address: { socket_address: { address: '0.0.0.0', port_value: port } },
    }),
    { [RDS]: [routeName] },
    owners,
  );
}

export interface Harness {
  readonly cache: ResourceCache;
  readonly xds: XdsServer;
  readonly port: number;
  sotw(opts?: OpenOptions): SotwClient;
  delta(opts?: OpenOptions): DeltaClient;
  set(byType: Record<string, Resource[]>): ReadonlySet<string>;
  fleetNode(id: string): NodeStatus | undefined;
  close(): Promise<void>;
}

export interface HarnessOptions {
  limits?: Partial<XdsLimits>;
  /** Default: every node in group GROUP. */
  groupOf?: (node: XdsNode) => string;
}

/** A fresh server and cache per test, so fleet and convergence see only that test's clients. */
export async function startXds(opts: HarnessOptions = {}): Promise<Harness> {
  const cache = new ResourceCache();
  const xds = new XdsServer({ cache, log: pino({ level: 'silent' }), groupOf: opts.groupOf ?? (() => GROUP), limits: opts.limits });
  const port = await xds.listen('127.0.0.1', 0);
  const clients: (SotwClient | DeltaClient)[] = [];
  return {
    cache,
    xds,
    port,
    sotw(opts) {
      const c = SotwClient.open(port, opts);
      clients.push(c);
      return c;
    },
    delta(opts) {
      const c = DeltaClient.open(port, opts);
      clients.push(c);
      return c;
    },
    set: (byType) => cache.set(GROUP, byType),
    fleetNode: (id) => xds.fleet().find((n) => n.id === id),
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await xds.close(500);
    },
  };
}

/** Polls `check` until it returns without throwing (the server learns of some events later). */
export async function eventually<T>(check: () => T, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export const sorted = (xs: readonly string[]) => [...xs].sort();
