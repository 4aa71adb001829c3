// An xDS resource encoded once per version. Every stream reuses these bytes.
import { createHash } from 'node:crypto';
import { Field, bytesField, concat, varintSize } from './wire.js';

export interface Resource {
  readonly typeUrl: string;
  readonly name: string;
  /** Hash of the encoded message: changes exactly when the bytes change. */
  readonly version: string;
  /** The `google.protobuf.Any` wrapping the message. */
  readonly any: Buffer;
  /** `resources` field of a DiscoveryResponse carrying this resource. */
  readonly sotwField: Buffer;
  /** `resources` field of a DeltaDiscoveryResponse carrying this resource. */
  readonly deltaField: Buffer;
  /** Names of resources of other types this one points at, by type URL. A client must keep
   *  those while it holds this resource (make-before-break). */
  readonly refs: Readonly<Record<string, readonly string[]>>;
}

export function hashBytes(...parts: (Uint8Array | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('base64url').slice(0, 16);
}

/**
 * The last resources made per type and name (a few: one name can have a variant per client
 * flavour, e.g. an Envoy and a gRPC cluster). Publishing re-translates every service, and most
 * resources come out byte-for-byte as before: those are handed back as they were, without
 * hashing and re-framing them (the cache keeps the old identity of an unchanged version anyway).
 * Bounded: cleared when it holds more than MEMO_MAX names.
 */
const memo = new Map<string, Map<string, Resource[]>>();
let memoSize = 0;
const MEMO_MAX = 100_000;
const VARIANTS = 4;

/** Wraps an encoded message as a cacheable resource. */
export function makeResource(
  typeUrl: string,
  name: string,
  message: Uint8Array,
  refs: Readonly<Record<string, readonly string[]>> = {},
): Resource {
  let byName = memo.get(typeUrl);
  const recent = byName?.get(name);
  if (recent)
    for (let i = 0; i < recent.length; i++) {
      const prev = recent[i]!;
      if (!holds(prev.any, typeUrl, message) || !sameRefs(prev.refs, refs)) continue;
      if (i > 0) recent.unshift(...recent.splice(i, 1)); // most recently used first
      return prev;
    }
  const any = concat([bytesField(Field.any.typeUrl, typeUrl), bytesField(Field.any.value, message)]);
  const version = hashBytes(any);
  const deltaBody = concat([
    bytesField(Field.resource.version, version),
    bytesField(Field.resource.resource, any),
    bytesField(Field.resource.name, name),
  ]);
  const r: Resource = {
    typeUrl,
    name,
    version,
    any,
    sotwField: bytesField(Field.response.resources, any),
    deltaField: bytesField(Field.deltaResponse.resources, deltaBody),
    refs,
  };
  if (memoSize >= MEMO_MAX) {
    // Plenty of names, most no longer published: start afresh.
    memo.clear();
    memoSize = 0;
    byName = undefined;
  }
  if (!byName) memo.set(typeUrl, (byName = new Map()));
  let list = byName.get(name);
  if (!list) {
    byName.set(name, (list = []));
    memoSize++;
  }
  list.unshift(r);
  if (list.length > VARIANTS) list.pop();
  return r;
}

/** Whether `any` (type_url field, then value field) wraps exactly `message`. */
function holds(any: Buffer, typeUrl: string, message: Uint8Array): boolean {
  const urlLen = Buffer.byteLength(typeUrl, 'utf8');
  const expected = 1 + varintSize(urlLen) + urlLen + 1 + varintSize(message.length) + message.length;
  if (any.length !== expected) return false;
  const tail = any.subarray(any.length - message.length);
  return Buffer.compare(tail, message) === 0;
}

function sameRefs(a: Readonly<Record<string, readonly string[]>>, b: Readonly<Record<string, readonly string[]>>): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const x = a[k]!;
    const y = b[k];
    if (!y || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}
