// The xDS client identity carried by the first request of a stream.
import { TypeUrl } from './protos.js';

export interface XdsNode {
  readonly id: string;
  readonly cluster: string;
  readonly userAgentName: string;
  readonly userAgentVersion: string;
  readonly clientFeatures: readonly string[];
  /** node.metadata as plain JSON (google.protobuf.Struct decoded). */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface RawNode {
  id?: string;
  cluster?: string;
  user_agent_name?: string;
  user_agent_version?: string;
  user_agent_build_version?: { version?: { major_number?: number; minor_number?: number; patch?: number } };
  client_features?: string[];
  metadata?: RawStruct | null;
  /** Bytes of the encoded node and of its metadata, set by the request decoder (requests.ts). */
  encoded_size?: number;
  metadata_size?: number;
}

// protobufjs' built-in google.protobuf.Struct/Value (used because no struct.proto is on the
// include path) has camelCase fields even when the rest is loaded with keepCase; a Struct
// loaded from a .proto file with keepCase would be snake_case. Both are read.
interface RawStruct {
  fields?: Record<string, RawValue> | null;
}
interface RawValue {
  nullValue?: unknown;
  numberValue?: number | null;
  stringValue?: string | null;
  boolValue?: boolean | null;
  structValue?: RawStruct | null;
  listValue?: { values?: RawValue[] | null } | null;
  null_value?: unknown;
  number_value?: number | null;
  string_value?: string | null;
  bool_value?: boolean | null;
  struct_value?: RawStruct | null;
  list_value?: { values?: RawValue[] | null } | null;
}

function structToJson(struct: RawStruct | null | undefined): Record<string, unknown> {
  // fromEntries defines own properties: a key named __proto__ stays an ordinary key.
  return Object.fromEntries(Object.entries(struct?.fields ?? {}).map(([k, v]) => [k, valueToJson(v)]));
}

function valueToJson(v: RawValue): unknown {
  const string = v.stringValue ?? v.string_value;
  if (string !== undefined && string !== null) return string;
  const number = v.numberValue ?? v.number_value;
  if (number !== undefined && number !== null) return number;
  const bool = v.boolValue ?? v.bool_value;
  if (bool !== undefined && bool !== null) return bool;
  const struct = v.structValue ?? v.struct_value;
  if (struct) return structToJson(struct);
  const list = v.listValue ?? v.list_value;
  if (list) return (list.values ?? []).map(valueToJson);
  return null;
}

export function nodeFromRequest(raw: RawNode): XdsNode {
  const build = raw.user_agent_build_version?.version;
  return {
    id: raw.id ?? '',
    cluster: raw.cluster ?? '',
    userAgentName: raw.user_agent_name ?? '',
    userAgentVersion:
      raw.user_agent_version || (build ? `${build.major_number ?? 0}.${build.minor_number ?? 0}.${build.patch ?? 0}` : ''),
    clientFeatures: raw.client_features ?? [],
    metadata: structToJson(raw.metadata),
  };
}

/** Order in which an aggregated stream applies a change: make before break. Routing scopes
 *  (SRDS) before the route configurations they name: a client asks for a scope's routes once it
 *  has the scope. */
export const PUSH_ORDER: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.ScopedRouteConfiguration,
  TypeUrl.RouteConfiguration,
];

export function byPushOrder(a: string, b: string): number {
  const ia = PUSH_ORDER.indexOf(a);
  const ib = PUSH_ORDER.indexOf(b);
  return (ia < 0 ? PUSH_ORDER.length : ia) - (ib < 0 ? PUSH_ORDER.length : ib);
}

/** Types whose state-of-the-world responses carry the complete set when subscribed by wildcard. */
export function isWildcardCapable(typeUrl: string): boolean {
  return typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster || typeUrl === TypeUrl.ScopedRouteConfiguration;
}
