// Bounds on what an xDS client may make the server hold or do. Everything a client sends is
// untrusted: each bound is refused with a gRPC status that names it, so a misconfigured client
// learns why, and no client can make the server slow or large for the others.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ProtocolError } from './errors.js';
import type { RawNode } from './node.js';
import { TypeUrl } from './protos.js';

export interface XdsLimits {
  /** Resource names in one request: resource_names (state of the world), or subscribe +
   *  unsubscribe + initial_resource_versions (delta). */
  maxNamesPerRequest: number;
  /** Names one stream may be subscribed to, over all its types (delta subscriptions add up). */
  maxSubscribedNamesPerStream: number;
  /** Length of one resource name, in bytes. */
  maxResourceNameBytes: number;
  /** Length of node.id and of node.cluster, in bytes. */
  maxNodeIdBytes: number;
  /** Encoded size of node.metadata (a google.protobuf.Struct). */
  maxNodeMetadataBytes: number;
  /** Encoded size of the whole node (metadata, user agent, client features, extensions...). */
  maxNodeBytes: number;
  /** Size of one request message (grpc.max_receive_message_length). */
  maxRequestBytes: number;
  /** Concurrent streams on one HTTP/2 connection (grpc.max_concurrent_streams). A client
   *  opening more has the extra ones queued by HTTP/2 until others end. */
  maxConcurrentStreamsPerConnection: number;
}

export const DEFAULT_LIMITS: Readonly<XdsLimits> = Object.freeze({
  // An Envoy asking for the endpoints of every cluster of a large mesh stays well within these.
  maxNamesPerRequest: 10_000,
  maxSubscribedNamesPerStream: 20_000,
  maxResourceNameBytes: 1024,
  maxNodeIdBytes: 512,
  maxNodeMetadataBytes: 64 * 1024,
  maxNodeBytes: 128 * 1024,
  maxRequestBytes: 4 * 1024 * 1024,
  maxConcurrentStreamsPerConnection: 1000,
});

/** The only types served. A request for any other is refused before anything is kept for it
 *  (no per-type state, no metrics series). */
export const KNOWN_TYPE_URLS: ReadonlySet<string> = new Set(Object.values(TypeUrl));

export function resolveLimits(overrides: Partial<XdsLimits> = {}): Readonly<XdsLimits> {
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof XdsLimits, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new Error(`unknown xDS limit ${key}`);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`xDS limit ${key} must be a positive integer, got ${value}`);
    limits[key] = value;
  }
  return Object.freeze(limits);
}

/** Options for the grpc-js Server that carries the xDS (and telemetry) services. */
export function grpcServerOptions(limits: Readonly<XdsLimits> = DEFAULT_LIMITS): Record<string, number> {
  return {
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreamsPerConnection,
    'grpc.max_receive_message_length': limits.maxRequestBytes,
  };
}

/** Refuses a node beyond the limits (its first request carries it). */
export function checkNode(node: RawNode, limits: Readonly<XdsLimits>): void {
  const tooLong = (field: string, value: string | undefined) => {
    const bytes = Buffer.byteLength(value ?? '', 'utf8');
    if (bytes > limits.maxNodeIdBytes)
      throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, `${field} is ${bytes} bytes; at most ${limits.maxNodeIdBytes} (maxNodeIdBytes)`);
  };
  tooLong('node.id', node.id);
  tooLong('node.cluster', node.cluster);
  if ((node.metadata_size ?? 0) > limits.maxNodeMetadataBytes)
    throw new ProtocolError(
      GrpcStatus.INVALID_ARGUMENT,
      `node.metadata is ${node.metadata_size} bytes encoded; at most ${limits.maxNodeMetadataBytes} (maxNodeMetadataBytes)`,
    );
  if ((node.encoded_size ?? 0) > limits.maxNodeBytes)
    throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, `node is ${node.encoded_size} bytes encoded; at most ${limits.maxNodeBytes} (maxNodeBytes)`);
}

/** Refuses a type URL Sluice does not serve. */
export function checkTypeUrl(typeUrl: string): void {
  if (KNOWN_TYPE_URLS.has(typeUrl)) return;
  const shown = typeUrl.length > 200 ? `${typeUrl.slice(0, 200)}…` : typeUrl;
  throw new ProtocolError(GrpcStatus.INVALID_ARGUMENT, `type_url ${JSON.stringify(shown)} is not served; served: ${[...KNOWN_TYPE_URLS].join(', ')}`);
}

/** Refuses a request naming too many resources, or a name too long. `lists` are the request's
 *  name lists (one for state of the world; subscribe, unsubscribe, initial versions for delta). */
export function checkRequestNames(lists: readonly (readonly string[])[], limits: Readonly<XdsLimits>): void {
  let count = 0;
  for (const l of lists) count += l.length;
  if (count > limits.maxNamesPerRequest)
    throw new ProtocolError(
      GrpcStatus.RESOURCE_EXHAUSTED,
      `the request names ${count} resources; at most ${limits.maxNamesPerRequest} per request (maxNamesPerRequest)`,
    );
  for (const l of lists)
    for (const name of l)
      // A UTF-8 string has at most 3 bytes per UTF-16 unit: most names need no byte count.
      if (name.length * 3 > limits.maxResourceNameBytes && Buffer.byteLength(name, 'utf8') > limits.maxResourceNameBytes)
        throw new ProtocolError(
          GrpcStatus.INVALID_ARGUMENT,
          `a resource name of ${Buffer.byteLength(name, 'utf8')} bytes (${JSON.stringify(name.slice(0, 40))}…); at most ${limits.maxResourceNameBytes} (maxResourceNameBytes)`,
        );
}

/** Refuses a subscription that would grow past the per-stream bound. */
export function checkSubscribed(total: number, limits: Readonly<XdsLimits>): void {
  if (total > limits.maxSubscribedNamesPerStream)
    throw new ProtocolError(
      GrpcStatus.RESOURCE_EXHAUSTED,
      `the stream would be subscribed to ${total} resource names; at most ${limits.maxSubscribedNamesPerStream} per stream (maxSubscribedNamesPerStream)`,
    );
}
