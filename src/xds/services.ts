// gRPC service definitions of everything Sluice serves, loaded by @grpc/proto-loader from the
// vendored .proto files: paths, method names and streaming kinds come from the protos. Only
// the codecs are Sluice's own, set per method by the caller: requests decoded by hand on the hot
// path (requests.ts) and responses written as pre-encoded Buffers (what makes fan-out cheap).
import type * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { INCLUDE_DIRS } from './protos.js';

export const Service = {
  ads: 'envoy.service.discovery.v3.AggregatedDiscoveryService',
  listeners: 'envoy.service.listener.v3.ListenerDiscoveryService',
  routes: 'envoy.service.route.v3.RouteDiscoveryService',
  clusters: 'envoy.service.cluster.v3.ClusterDiscoveryService',
  endpoints: 'envoy.service.endpoint.v3.EndpointDiscoveryService',
  loadStats: 'envoy.service.load_stats.v3.LoadReportingService',
  metrics: 'envoy.service.metrics.v3.MetricsService',
} as const;
export type ServiceName = (typeof Service)[keyof typeof Service];

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/listener/v3/lds.proto',
  'envoy/service/route/v3/rds.proto',
  'envoy/service/cluster/v3/cds.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/service/load_stats/v3/lrs.proto',
  'envoy/service/metrics/v3/metrics_service.proto',
];

let loaded: protoLoader.PackageDefinition | undefined;

function packageDefinition(): protoLoader.PackageDefinition {
  loaded ??= protoLoader.loadSync(FILES, { keepCase: true, includeDirs: INCLUDE_DIRS });
  return loaded;
}

/** A loaded method: its definition as the .proto gives it, and the name of its request message. */
export interface LoadedMethod {
  readonly name: string;
  readonly definition: protoLoader.MethodDefinition<object, object>;
  /** The request message's name, e.g. DeltaDiscoveryRequest. */
  readonly requestType: string;
}

/** The methods of a service, as declared in its .proto file. */
export function methodsOf(service: ServiceName): LoadedMethod[] {
  const def = packageDefinition()[service] as protoLoader.ServiceDefinition | undefined;
  if (!def) throw new Error(`service ${service} is not in the loaded protos`);
  return Object.entries(def).map(([name, definition]) => ({
    name,
    definition,
    requestType: (definition.requestType.type as { name: string }).name,
  }));
}

const identity = (b: Buffer) => b;

/** A service definition for grpc-js with the given request decoders; responses are Buffers. */
export function serviceDefinition(
  service: ServiceName,
  decoders: Readonly<Record<string, (buf: Buffer) => unknown>>,
): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, Buffer>> = {};
  const methods = methodsOf(service);
  for (const name of Object.keys(decoders))
    if (!methods.some((m) => m.name === name)) throw new Error(`${service} has no method ${name}`);
  for (const { name, definition } of methods) {
    const requestDeserialize = decoders[name];
    if (!requestDeserialize) continue; // not served (e.g. VirtualHostDiscoveryService is not registered at all)
    out[name] = {
      ...(definition as unknown as grpc.MethodDefinition<unknown, Buffer>),
      requestDeserialize,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
  }
  return out as grpc.ServiceDefinition;
}
