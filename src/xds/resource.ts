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
  /** Owner key (opaque here; Sluice uses service names) → fragment version: a hash of that
   *  owner's part of the resource. Fleet status answers per owner: a client holds an owner's
   *  current state when the version it ACKed carries the owner's current fragment. */
  readonly owners: Owners;
}

export type Owners = Readonly<Record<string, string>>;

/** Who owns a resource: owner → fragment version, or a list of owners whose fragment is the
 *  whole resource's version (right for a resource only they contribute to). */
export type OwnersSpec = Owners | readonly string[];

const NO_OWNERS: Owners = Object.freeze(Object.create(null) as Record<string, string>);

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
  owners: OwnersSpec = NO_OWNERS,
): Resource {
  let byName = memo.get(typeUrl);
  const recent = byName?.get(name);
  if (recent)
    for (let i = 0; i < recent.length; i++) {
      const prev = recent[i]!;
      if (!holds(prev.any, typeUrl, message) || !sameRefs(prev.refs, refs) || !sameOwners(prev, owners)) continue;
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
    owners: ownersOf(owners, version),
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

function ownersOf(spec: OwnersSpec, version: string): Owners {
  const entries: [string, string][] = Array.isArray(spec)
    ? (spec as readonly string[]).map((o) => [o, version])
    : Object.entries(spec as Owners);
  if (entries.length === 0) return NO_OWNERS;
  for (const [owner, fragment] of entries) {
    if (typeof owner !== 'string' || owner === '') throw new Error('an owner key must be a non-empty string');
    if (typeof fragment !== 'string' || fragment === '') throw new Error(`owner ${owner}: the fragment version must be a non-empty string`);
  }
  // No prototype: an owner named like an Object method ('constructor') must read as absent.
  return Object.freeze(Object.assign(Object.create(null) as Record<string, string>, Object.fromEntries(entries)));
}

/** Whether `prev` was made with owners equal to `spec` (a list means fragment = version). */
function sameOwners(prev: Resource, spec: OwnersSpec): boolean {
  const have = prev.owners;
  if (Array.isArray(spec)) {
    const list = spec as readonly string[];
    if (Object.keys(have).length !== new Set(list).size) return false;
    for (const o of list) if (have[o] !== prev.version) return false;
    return true;
  }
  const want = spec as Owners;
  if (have === want) return true;
  for (const k of Object.keys(want)) if (have[k] !== want[k]) return false;
  return Object.keys(have).length === Object.keys(want).length;
}

