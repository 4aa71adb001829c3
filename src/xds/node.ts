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
  metadata?: { fields?: Record<string, RawValue> };
}
interface RawValue {
  null_value?: unknown;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: { fields?: Record<string, RawValue> };
  list_value?: { values?: RawValue[] };
}

function structToJson(fields: Record<string, RawValue> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: RawValue): unknown {
  if (v.string_value !== undefined && v.string_value !== null) return v.string_value;
  if (v.number_value !== undefined && v.number_value !== null) return v.number_value;
  if (v.bool_value !== undefined && v.bool_value !== null) return v.bool_value;
  if (v.struct_value) return structToJson(v.struct_value.fields);
  if (v.list_value) return (v.list_value.values ?? []).map(valueToJson);
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
    metadata: structToJson(raw.metadata?.fields),
  };
}

/** Order in which an aggregated stream applies a change: make before break. */
export const PUSH_ORDER: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

export function byPushOrder(a: string, b: string): number {
  const ia = PUSH_ORDER.indexOf(a);
  const ib = PUSH_ORDER.indexOf(b);
  return (ia < 0 ? PUSH_ORDER.length : ia) - (ib < 0 ? PUSH_ORDER.length : ib);
}

/** Types whose state-of-the-world responses carry the complete set when subscribed by wildcard. */
export function isWildcardCapable(typeUrl: string): boolean {
  return typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
}
