// One protobufjs registry for every Envoy/xDS message Sluice encodes or decodes. Loading all
// files into one Root lets nested `google.protobuf.Any` payloads (HttpConnectionManager,
// Router, ...) be packed and unpacked by type URL.
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Finds `protos/` whether running from src/ (tests) or dist/src/ (built). */
function findProtoDir(): string {
  let dir = here;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'protos');
    if (fs.existsSync(path.join(candidate, 'envoy-api'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`protos/ not found above ${here}`);
}

export const PROTO_DIR = findProtoDir();
// google/protobuf/descriptor.proto etc. ship with protobufjs; the common ones are built in.
const PROTOBUFJS_DIR = path.dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'));
export const INCLUDE_DIRS = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate', 'prometheus', 'opentelemetry', 'cel-spec'].map((d) => path.join(PROTO_DIR, d)),
  PROTOBUFJS_DIR,
];

/** Entry files; their imports are loaded transitively. */
const ENTRY_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/listener/v3/lds.proto',
  'envoy/service/route/v3/rds.proto',
  'envoy/service/route/v3/srds.proto',
  'envoy/service/cluster/v3/cds.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/service/load_stats/v3/lrs.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/service/metrics/v3/metrics_service.proto',
  'envoy/config/metrics/v3/metrics_service.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/route/v3/scoped_route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
];

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target) && fs.existsSync(target)) return target;
    for (const dir of INCLUDE_DIRS) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target; // built-in well-known types (any, duration, wrappers, ...)
  };
  root.loadSync(ENTRY_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

export const root = loadRoot();

const TYPE_PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  Listener: `${TYPE_PREFIX}envoy.config.listener.v3.Listener`,
  RouteConfiguration: `${TYPE_PREFIX}envoy.config.route.v3.RouteConfiguration`,
  Cluster: `${TYPE_PREFIX}envoy.config.cluster.v3.Cluster`,
  ClusterLoadAssignment: `${TYPE_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  ScopedRouteConfiguration: `${TYPE_PREFIX}envoy.config.route.v3.ScopedRouteConfiguration`,
} as const;
export type KnownTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

const typeCache = new Map<string, protobuf.Type>();

/** Looks up a message type by full name (`envoy.config.listener.v3.Listener`). */
export function messageType(fullName: string): protobuf.Type {
  let t = typeCache.get(fullName);
  if (!t) {
    t = root.lookupType(fullName);
    typeCache.set(fullName, t);
  }
  return t;
}

export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Encodes a plain object (enums by name) as the given message. Tests decode every
 *  translated resource strictly, which catches misspelled fields fromObject would skip. */
export function encodeMessage(fullName: string, value: object): Uint8Array {
  const t = messageType(fullName);
  return t.encode(t.fromObject(value)).finish();
}

export interface AnyValue {
  type_url: string;
  value: Uint8Array;
}

/** Packs a plain object into a `google.protobuf.Any` ready to be nested in another message. */
export function packAny(fullName: string, value: object): AnyValue {
  return { type_url: TYPE_PREFIX + fullName, value: encodeMessage(fullName, value) };
}

/** Decodes `Any` bytes into a plain object (enums as strings, 64-bit as strings). */
export function unpackAny(any: { type_url: string; value: Uint8Array }): Record<string, unknown> {
  const t = messageType(typeNameOf(any.type_url));
  return t.toObject(t.decode(any.value), { enums: String, longs: String, defaults: false });
}
