// A raw ADS client that subscribes the way Envoy does and keeps every response's bytes, so
// that each resource can be decoded strictly (see strict-decode.ts). test/support/ads-client.ts
// decodes with protobufjs, which drops unknown fields: exactly what these tests look for.
import * as grpc from '@grpc/grpc-js';
import { messageType, TypeUrl } from '../../src/xds/protos.js';
import type { CheckOptions, Decoded, Json } from './strict-decode.js';
import { decodeStrict } from './strict-decode.js';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
type Obj = { [key: string]: Json };

export interface FakeNode {
  id: string;
  cluster?: string;
  /** 'envoy' for Envoy; proxyless gRPC sends e.g. 'gRPC Node'. */
  user_agent_name: string;
  user_agent_build_version?: { version: { major_number: number; minor_number: number; patch: number } };
  client_features?: string[];
}

/** What Envoy 1.36 sends as its node (id and cluster come from --service-node/--service-cluster). */
export function envoyNode(id: string): FakeNode {
  return {
    id,
    cluster: 'sluice-demo',
    user_agent_name: 'envoy',
    user_agent_build_version: { version: { major_number: 1, minor_number: 36, patch: 2 } },
    client_features: ['envoy.lb.does_not_support_overprovisioning', 'envoy.lrs.supports_send_all_clusters'],
  };
}

export class FakeEnvoy {
  /** Resources held, by type URL then name, in JSON form. */
  readonly resources = new Map<string, Map<string, Obj>>();
  /** Every strict-decoding problem of every response, prefixed with type URL and nonce. */
  readonly problems: string[] = [];
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly inbox: Decoded[] = [];
  private wake?: () => void;
  private first = true;
  /** Per type URL, the names last subscribed ([] = wildcard): what an ACK repeats (state of the world). */
  private readonly subscribed = new Map<string, string[]>();

  constructor(
    port: number,
    private readonly node: FakeNode,
    private readonly mode: 'sotw' | 'delta' = 'sotw',
    checks: CheckOptions = {},
  ) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const method = mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources';
    this.call = this.client.makeBidiStreamRequest(`${ADS}/${method}`, identity, identity);
    const response = `envoy.service.discovery.v3.${mode === 'sotw' ? 'DiscoveryResponse' : 'DeltaDiscoveryResponse'}`;
    this.call.on('data', (b: Buffer) => {
      this.inbox.push(decodeStrict(response, b, checks));
      this.wake?.();
    });
    this.call.on('error', () => {}); // a cancelled call on close is expected
  }

  /** Subscribes to `names` of a type ([] = wildcard), waits for the response, ACKs it and
   *  returns the resources it carried. */
  async fetch(typeUrl: string, names: string[] = [], timeoutMs = 5000): Promise<Map<string, Obj>> {
    const node = this.first ? { node: this.node } : {};
    this.first = false;
    if (this.mode === 'sotw') this.send('DiscoveryRequest', { ...node, type_url: typeUrl, resource_names: names });
    else this.send('DeltaDiscoveryRequest', { ...node, type_url: typeUrl, resource_names_subscribe: names });
    this.subscribed.set(typeUrl, names);
    return this.receive(typeUrl, timeoutMs);
  }

  /** Waits for the server to push `typeUrl` again (after a change), ACKs it like Envoy and
   *  returns the resources it carried. */
  awaitPush(typeUrl: string, timeoutMs = 5000): Promise<Map<string, Obj>> {
    return this.receive(typeUrl, timeoutMs);
  }

  /** Responses received and not yet read, of `typeUrl` (a client whose resources did not change gets none). */
  unread(typeUrl: string): number {
    return this.inbox.filter((d) => d.value.type_url === typeUrl).length;
  }

  /** Reads the next response of `typeUrl`, ACKs it and keeps what it carried. */
  private async receive(typeUrl: string, timeoutMs: number): Promise<Map<string, Obj>> {
    const names = this.subscribed.get(typeUrl) ?? [];
    const response = await this.next(typeUrl, timeoutMs);
    const held = this.resources.get(typeUrl) ?? new Map<string, Obj>();
    const got = new Map<string, Obj>();
    if (this.mode === 'sotw') {
      for (const r of list(response.resources)) got.set(resourceName(r as Obj), r as Obj);
      this.send('DiscoveryRequest', { type_url: typeUrl, resource_names: names, version_info: response.version_info ?? '', response_nonce: response.nonce });
      if (names.length === 0) held.clear(); // a wildcard state-of-the-world response is the complete set
    } else {
      for (const r of list(response.resources)) got.set(String((r as Obj).name), (r as Obj).resource as Obj);
      for (const name of list(response.removed_resources)) held.delete(String(name));
      this.send('DeltaDiscoveryRequest', { type_url: typeUrl, response_nonce: response.nonce });
    }
    for (const [name, r] of got) held.set(name, r);
    this.resources.set(typeUrl, held);
    return got;
  }

  /** Envoy's own order: clusters, their endpoints, listeners, their route configurations. */
  async syncLikeEnvoy(): Promise<void> {
    const clusters = await this.fetch(TypeUrl.Cluster);
    await this.fetch(TypeUrl.ClusterLoadAssignment, [...clusters.values()].filter((c) => c.type === 'EDS').map(edsName));
    const listeners = await this.fetch(TypeUrl.Listener);
    await this.fetch(TypeUrl.RouteConfiguration, [...listeners.values()].flatMap(routeConfigNames));
  }

  held(typeUrl: string): Map<string, Obj> {
    return this.resources.get(typeUrl) ?? new Map();
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }

  private send(message: 'DiscoveryRequest' | 'DeltaDiscoveryRequest', body: object): void {
    const t = messageType(`envoy.service.discovery.v3.${message}`);
    this.call.write(Buffer.from(t.encode(t.fromObject(body)).finish()));
  }

  /** The next response of `typeUrl`, decoded strictly; problems are collected. */
  private async next(typeUrl: string, timeoutMs: number): Promise<Obj> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((d) => d.value.type_url === typeUrl);
      if (i >= 0) {
        const { value, problems } = this.inbox.splice(i, 1)[0]!;
        this.problems.push(...problems.map((p) => `${typeUrl} nonce ${value.nonce}: ${p}`));
        return value;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${typeUrl} response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

const list = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

function resourceName(r: Obj): string {
  return String(r.name ?? r.cluster_name ?? '');
}

/** The name a cluster's endpoints are requested by. */
export function edsName(cluster: Obj): string {
  const eds = cluster.eds_cluster_config as Obj | undefined;
  return String(eds?.service_name || cluster.name);
}

/** Route configuration names the HTTP connection managers of a listener ask RDS for. */
export function routeConfigNames(listener: Obj): string[] {
  const hcms: Obj[] = [];
  const api = (listener.api_listener as Obj | undefined)?.api_listener as Obj | undefined;
  if (api) hcms.push(api);
  for (const chain of list(listener.filter_chains) as Obj[])
    for (const f of list(chain.filters) as Obj[]) if (f.typed_config) hcms.push(f.typed_config as Obj);
  return hcms.map((h) => (h.rds as Obj | undefined)?.route_config_name).filter((n): n is string => typeof n === 'string');
}
