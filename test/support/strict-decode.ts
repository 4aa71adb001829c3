// Strict checks of Envoy configuration against the vendored protos, because Envoy itself cannot
// run here. Envoy rejects what these catch, so a test that passes them has removed the usual
// reasons for a NACK or a failed start:
//  - structure: every field name exists in its message (snake_case or lowerCamelCase, as
//    Envoy's YAML/JSON loader accepts), values have the field's kind, enums are defined names,
//    no two members of a oneof are set, deprecated fields are refused unless allowed (Envoy
//    turns them into errors release by release);
//  - `google.protobuf.Any` (`@type` in YAML/JSON, `type_url` in bytes) resolves to a type of
//    the project's proto registry and is checked recursively;
//  - bytes: no unknown field numbers and no wire type that disagrees with the field, checked on
//    the wire itself, since protobufjs skips unknown fields silently when it decodes;
//  - the protoc-gen-validate rules in the protos (`(validate.rules)`, `(validate.required)`),
//    which Envoy enforces on every resource it loads (the subset Envoy's protos use, listed in
//    `checkRules`);
//  - a few checks Envoy makes in code rather than in annotations (`ENVOY_RULES`).
// Problems are strings "path: message", the path in the JSON form (`a.b[0].c`).
import re2 from 're2-wasm';
import net from 'node:net';
import protobuf from 'protobufjs';
import { root } from '../../src/xds/protos.js';

const { RE2 } = re2;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

export interface CheckOptions {
  /** Accept deprecated fields (gRPC clients need some of them; Envoy should never get them). */
  allowDeprecated?: boolean;
}

export interface Decoded {
  /** The message in JSON form: snake_case names, enums by name, Any as `{"@type", ...}`. */
  value: Obj;
  problems: string[];
}

class Ctx {
  readonly problems: string[] = [];
  constructor(readonly opts: CheckOptions) {}
  add(path: string, message: string): void {
    this.problems.push(`${path || '$'}: ${message}`);
  }
}

/** Problems of a message given in JSON/YAML form (e.g. a bootstrap file); [] when valid. */
export function checkJson(typeName: string, value: unknown, opts: CheckOptions = {}): string[] {
  const ctx = new Ctx(opts);
  checkMessage(mustFindType(typeName), value as Json, '', ctx);
  return ctx.problems;
}

/** Decodes bytes strictly: the wire checks, then every check `checkJson` makes. */
export function decodeStrict(typeName: string, bytes: Uint8Array, opts: CheckOptions = {}): Decoded {
  const type = mustFindType(typeName);
  const ctx = new Ctx(opts);
  walkWire(type, bytes, '', ctx);
  let json: Json;
  try {
    json = messageToJson(type, type.decode(bytes));
  } catch (err) {
    ctx.add('', `cannot decode ${typeName}: ${(err as Error).message}`);
    return { value: {}, problems: ctx.problems };
  }
  const value = checkMessage(type, json, '', ctx);
  return { value: isObject(value) ? value : {}, problems: ctx.problems };
}

// ---------------------------------------------------------------------------------------------
// Types

/** A message type by full name or type URL; undefined when the registry lacks it. */
function findType(name: string): protobuf.Type | undefined {
  const full = name.slice(name.lastIndexOf('/') + 1).replace(/^\./, '');
  if (!full) return undefined;
  const found = root.lookup(`.${full}`, [protobuf.Type]);
  return found instanceof protobuf.Type ? found : undefined;
}

function mustFindType(name: string): protobuf.Type {
  const t = findType(name);
  if (!t) throw new Error(`${name} is not a message type of the proto registry`);
  return t;
}

const nameOf = (t: protobuf.ReflectionObject) => t.fullName.slice(1);

const WRAPPERS = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map((n) => `google.protobuf.${n}Value`),
);
/** Well-known types whose JSON form is not an object of their fields. */
const isSpecialJson = (name: string) =>
  WRAPPERS.has(name) || ['Duration', 'Timestamp', 'Struct', 'Value', 'ListValue', 'FieldMask'].some((n) => name === `google.protobuf.${n}`);

function fieldByKey(type: protobuf.Type, key: string): protobuf.Field | undefined {
  if (hasOwn(type.fields, key)) return type.fields[key];
  return type.fieldsArray.find((f) => (f.options?.json_name ?? protobuf.util.camelCase(f.name)) === key);
}

/** The real oneof a field belongs to (proto3 `optional` makes synthetic ones named `_x`). */
function oneofOf(field: protobuf.Field): protobuf.OneOf | undefined {
  const o = field.partOf;
  return o && !(o.fieldsArray.length === 1 && o.name === `_${field.name}`) ? o : undefined;
}

// ---------------------------------------------------------------------------------------------
// Wire checks (bytes)

/** protobufjs' wire type per scalar type; enums are varints, messages length-delimited. */
function wireTypeOf(field: protobuf.FieldBase): number {
  if (field.resolvedType instanceof protobuf.Enum) return 0;
  if (field.resolvedType instanceof protobuf.Type) return 2;
  return (protobuf.types.basic as Record<string, number>)[field.type] ?? 2;
}

function walkWire(type: protobuf.Type, bytes: Uint8Array, path: string, ctx: Ctx): void {
  const r = protobuf.Reader.create(bytes);
  const seen = new Map<number, number>(); // occurrences per field number: indexes of repeated fields
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const id = tag >>> 3;
      const wt = tag & 7;
      const field = type.fieldsById[id];
      if (!field) {
        ctx.add(path, `unknown field number ${id} (wire type ${wt}) in ${nameOf(type)}`);
        r.skipType(wt);
        continue;
      }
      const n = seen.get(id) ?? 0;
      seen.set(id, n + 1);
      const at = field.repeated && !field.map ? `${join(path, field.name)}[${n}]` : join(path, field.name);
      const packable = field.resolvedType instanceof protobuf.Enum || (protobuf.types.packed as Record<string, number>)[field.type] !== undefined;
      const packed = field.repeated && wt === 2 && packable;
      const expected = field.map ? 2 : wireTypeOf(field);
      if (wt !== expected && !packed) {
        ctx.add(at, `wire type ${wt} where ${nameOf(type)}.${field.name} needs ${expected}`);
        r.skipType(wt);
      } else if (field.map) walkMapEntry(field as unknown as protobuf.MapField, r.bytes(), at, ctx);
      else if (field.resolvedType instanceof protobuf.Type) walkMessage(field.resolvedType, r.bytes(), at, ctx);
      else r.skipType(wt);
    }
  } catch (err) {
    ctx.add(path, `malformed ${nameOf(type)}: ${(err as Error).message}`);
  }
}

function walkMessage(type: protobuf.Type, bytes: Uint8Array, path: string, ctx: Ctx): void {
  walkWire(type, bytes, path, ctx);
  if (nameOf(type) !== 'google.protobuf.Any') return;
  const any = type.decode(bytes) as unknown as { type_url: string; value: Uint8Array };
  const inner = findType(any.type_url);
  if (!inner) ctx.add(path, `type_url "${any.type_url}" is not a type of the proto registry`);
  else walkWire(inner, any.value, path, ctx);
}

function walkMapEntry(field: protobuf.MapField, bytes: Uint8Array, path: string, ctx: Ctx): void {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const [id, wt] = [tag >>> 3, tag & 7];
    const expected = id === 1 ? (protobuf.types.basic as Record<string, number>)[field.keyType] : wireTypeOf(field);
    if ((id !== 1 && id !== 2) || wt !== expected) {
      ctx.add(path, `bad map entry field ${id} (wire type ${wt})`);
      r.skipType(wt);
    } else if (id === 2 && field.resolvedType instanceof protobuf.Type) walkMessage(field.resolvedType, r.bytes(), `${path}[value]`, ctx);
    else r.skipType(wt);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoded message → JSON form (what Envoy's config_dump would print)

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const base64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function messageToJson(type: protobuf.Type, msg: object): Json {
  const m = msg as Record<string, unknown>;
  const name = nameOf(type);
  switch (name) {
    case 'google.protobuf.Any': {
      const url = String(m.type_url ?? '');
      const inner = findType(url);
      if (!inner) return { '@type': url, value: base64((m.value as Uint8Array) ?? new Uint8Array()) };
      const json = messageToJson(inner, inner.decode(m.value as Uint8Array));
      return isSpecialJson(nameOf(inner)) ? { '@type': url, value: json } : { '@type': url, ...(json as Obj) };
    }
    case 'google.protobuf.Duration':
      return durationJson(m.seconds, m.nanos);
    case 'google.protobuf.Timestamp':
      return new Date(Number(m.seconds ?? 0) * 1000 + Math.floor(Number(m.nanos ?? 0) / 1e6)).toISOString();
    case 'google.protobuf.Struct':
      return Object.fromEntries(Object.entries((m.fields as Record<string, object>) ?? {}).map(([k, v]) => [k, valueToJson(v)]));
    case 'google.protobuf.Value':
      return valueToJson(m);
    case 'google.protobuf.ListValue':
      return ((m.values as object[]) ?? []).map(valueToJson);
  }
  if (WRAPPERS.has(name)) return scalarToJson(type.fields.value!, m.value ?? type.fields.value!.defaultValue);
  const out: Obj = {};
  for (const f of type.fieldsArray) {
    const v = m[f.name];
    if (!hasOwn(m, f.name) || v === null || v === undefined) continue;
    if (f.map) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length) out[f.name] = Object.fromEntries(entries.map(([k, x]) => [k, elementToJson(f, x)]));
    } else if (f.repeated) {
      if ((v as unknown[]).length) out[f.name] = (v as unknown[]).map((x) => elementToJson(f, x));
    } else if (f.partOf || f.resolvedType instanceof protobuf.Type || !isDefault(v)) out[f.name] = elementToJson(f, v);
  }
  return out;
}

/** A proto3 scalar at its default means "unset"; the canonical JSON form leaves it out. */
const isDefault = (v: unknown) => v === false || v === '' || String(v) === '0' || (v instanceof Uint8Array && v.length === 0);

/** Proto3 JSON form of a duration: "1s", "0.250s". */
function durationJson(seconds: unknown, nanos: unknown): string {
  const fraction = String(Math.abs(Number(nanos ?? 0))).padStart(9, '0').replace(/0+$/, '');
  const sign = Number(nanos ?? 0) < 0 && Number(seconds ?? 0) === 0 ? '-' : '';
  return `${sign}${String(seconds ?? 0)}${fraction ? `.${fraction}` : ''}s`;
}

function valueToJson(v: object): Json {
  const x = v as Record<string, unknown>;
  if (x.struct_value) return messageToJson(findType('google.protobuf.Struct')!, x.struct_value as object);
  if (x.list_value) return messageToJson(findType('google.protobuf.ListValue')!, x.list_value as object);
  for (const k of ['string_value', 'number_value', 'bool_value'])
    if (x[k] !== undefined && x[k] !== null) return x[k] as Json;
  return null;
}

function elementToJson(f: protobuf.Field, v: unknown): Json {
  if (f.resolvedType instanceof protobuf.Type) return messageToJson(f.resolvedType, v as object);
  return scalarToJson(f, v);
}

function scalarToJson(f: protobuf.Field, v: unknown): Json {
  if (f.resolvedType instanceof protobuf.Enum) return f.resolvedType.valuesById[v as number] ?? (v as number);
  if (v instanceof Uint8Array) return base64(v);
  if (/64$/.test(f.type)) return String(v);
  return v as Json;
}

// ---------------------------------------------------------------------------------------------
// Structure checks (JSON form); each returns the value normalized to snake_case names

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
const describe = (v: unknown) => (Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`);

function checkMessage(type: protobuf.Type, v: Json, path: string, ctx: Ctx): Json {
  const name = nameOf(type);
  if (name === 'google.protobuf.Any') return checkAny(v, path, ctx);
  if (isSpecialJson(name)) return checkSpecial(type, v, path, ctx);
  if (!isObject(v)) {
    ctx.add(path, `expected an object (${name}), got ${describe(v)}`);
    return v;
  }
  const out: Obj = {};
  for (const [key, val] of Object.entries(v)) {
    const field = fieldByKey(type, key);
    const at = join(path, key);
    if (!field) {
      ctx.add(at, `unknown field "${key}" in ${name}${suggestion(type, key)}`);
      continue;
    }
    if (hasOwn(out, field.name)) {
      ctx.add(at, `${field.name} is given twice`);
      continue;
    }
    if (val === null) continue; // JSON null = unset
    if (field.options?.['(envoy.annotations.disallowed_by_default)']) ctx.add(at, `${name}.${field.name} is disallowed by default in Envoy`);
    else if (field.options?.deprecated && !ctx.opts.allowDeprecated) ctx.add(at, `${name}.${field.name} is deprecated`);
    out[field.name] = checkField(field, val, join(path, field.name), ctx);
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => oneofOf(f) && hasOwn(out, f.name)).map((f) => f.name);
    if (set.length > 1) ctx.add(path, `${set.join(' and ')} are members of oneof ${oneof.name}: set one`);
    else if (set.length === 0 && oneof.options?.['(validate.required)']) ctx.add(path, `one of ${oneof.fieldsArray.map((f) => f.name).join(', ')} is required`);
  }
  checkRules(type, out, path, ctx);
  ENVOY_RULES[name]?.(out, path, ctx);
  return out;
}

function checkField(field: protobuf.Field, v: Json, path: string, ctx: Ctx): Json {
  if (field.map) {
    if (!isObject(v)) {
      ctx.add(path, `expected a map, got ${describe(v)}`);
      return v;
    }
    const keyType = (field as unknown as protobuf.MapField).keyType;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => {
        const at = `${path}[${JSON.stringify(k)}]`;
        // JSON map keys are strings; non-string key types must spell their value.
        const keyOk = keyType === 'string' || (keyType === 'bool' ? k === 'true' || k === 'false' : /^-?\d+$/.test(k));
        if (!keyOk) ctx.add(at, `map key must be a ${keyType}`);
        return [k, checkElement(field, x, at, ctx)];
      }),
    );
  }
  if (field.repeated) {
    if (!Array.isArray(v)) {
      ctx.add(path, `expected a list, got ${describe(v)}`);
      return v;
    }
    return v.map((x, i) => checkElement(field, x, `${path}[${i}]`, ctx));
  }
  return checkElement(field, v, path, ctx);
}

function checkElement(field: protobuf.Field, v: Json, path: string, ctx: Ctx): Json {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return checkMessage(rt, v, path, ctx);
  if (rt instanceof protobuf.Enum) {
    const ok = typeof v === 'string' ? rt.values[v] !== undefined : typeof v === 'number' && rt.valuesById[v] !== undefined;
    if (!ok) ctx.add(path, `${JSON.stringify(v)} is not a value of enum ${nameOf(rt)} (${Object.keys(rt.values).join(', ')})`);
    const options = rt.valuesOptions?.[typeof v === 'string' ? v : (rt.valuesById[v as number] ?? '')];
    if (options?.['(envoy.annotations.disallowed_by_default_enum)']) ctx.add(path, `${nameOf(rt)}.${v} is disallowed by default in Envoy`);
    else if (options?.deprecated && !ctx.opts.allowDeprecated) ctx.add(path, `${nameOf(rt)}.${v} is deprecated`);
    return v;
  }
  checkScalar(field.type, v, path, ctx);
  return v;
}

const INT_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};

function checkScalar(type: string, v: unknown, path: string, ctx: Ctx): void {
  const bad = (what: string) => ctx.add(path, `expected ${what} (${type}), got ${describe(v)}`);
  if (type === 'string') return void (typeof v !== 'string' && bad('a string'));
  if (type === 'bool') return void (typeof v !== 'boolean' && bad('true or false'));
  if (type === 'bytes') return void ((typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) && bad('base64'));
  if (type === 'double' || type === 'float')
    return void (typeof v !== 'number' && !(typeof v === 'string' && /^(NaN|-?Infinity|-?\d+(\.\d+)?([eE][-+]?\d+)?)$/.test(v)) && bad('a number'));
  const range = INT_RANGE[type];
  if (range) {
    const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    return void ((typeof n !== 'number' || !Number.isInteger(n) || n < range[0] || n > range[1]) && bad('an integer in range'));
  }
  // 64-bit: a decimal string (the canonical JSON form) or a safe integer.
  const unsigned = type.startsWith('u') || type === 'fixed64';
  const ok = typeof v === 'string' ? (unsigned ? /^\d+$/ : /^-?\d+$/).test(v) : Number.isSafeInteger(v) && (!unsigned || (v as number) >= 0);
  if (!ok) bad('an integer');
}

function checkAny(v: Json, path: string, ctx: Ctx): Json {
  if (!isObject(v) || typeof v['@type'] !== 'string') {
    ctx.add(path, `expected an Any with "@type", got ${describe(v)}`);
    return v;
  }
  const url = v['@type'];
  const inner = findType(url);
  if (!url.includes('/') || !inner) {
    ctx.add(join(path, '@type'), `"${url}" does not name a type of the proto registry (type.googleapis.com/<full name>)`);
    return v;
  }
  const { '@type': _, ...rest } = v;
  if (!isSpecialJson(nameOf(inner))) return { '@type': url, ...(checkMessage(inner, rest, path, ctx) as Obj) };
  for (const k of Object.keys(rest)) if (k !== 'value') ctx.add(join(path, k), `unknown field "${k}" in an Any of ${nameOf(inner)}`);
  return { '@type': url, value: checkMessage(inner, rest.value ?? null, join(path, 'value'), ctx) };
}

/** Well-known types: their JSON form, or the object of their fields (YAML authors use both). */
function checkSpecial(type: protobuf.Type, v: Json, path: string, ctx: Ctx): Json {
  const name = nameOf(type);
  const plain = (ok: boolean, what: string) => {
    if (!ok) ctx.add(path, `expected ${what} (${name}), got ${describe(v)}`);
    return v;
  };
  if (WRAPPERS.has(name) && !isObject(v)) {
    checkScalar(type.fields.value!.type, v, path, ctx);
    return v;
  }
  switch (name) {
    case 'google.protobuf.Duration':
      if (typeof v === 'string') return plain(/^-?\d+(\.\d{1,9})?s$/.test(v), 'a duration like "1s" or "0.250s"');
      break;
    case 'google.protobuf.Timestamp':
      if (typeof v === 'string') return plain(!Number.isNaN(Date.parse(v)), 'an RFC 3339 time');
      break;
    case 'google.protobuf.FieldMask':
      return plain(typeof v === 'string', 'a comma-separated path list');
    case 'google.protobuf.Struct':
      return plain(isObject(v), 'an object');
    case 'google.protobuf.ListValue':
      return plain(Array.isArray(v), 'a list');
    case 'google.protobuf.Value':
      return v;
  }
  if (!isObject(v)) return plain(false, 'its JSON form or an object');
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    const f = fieldByKey(type, k);
    if (!f) ctx.add(join(path, k), `unknown field "${k}" in ${name}`);
    else if (x !== null) out[f.name] = checkField(f, x, join(path, f.name), ctx);
  }
  if (WRAPPERS.has(name)) return out.value ?? type.fields.value!.defaultValue;
  return name === 'google.protobuf.Duration' ? durationJson(out.seconds, out.nanos) : out;
}

function suggestion(type: protobuf.Type, key: string): string {
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  let best: string | undefined;
  let bestDistance = 4;
  for (const f of type.fieldsArray) {
    const d = editDistance(snake, f.name);
    if (d < bestDistance) [best, bestDistance] = [f.name, d];
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// protoc-gen-validate rules. Implemented: message.required, string {min_len, max_len, len,
// min_bytes, max_bytes, prefix, suffix, contains, in, not_in, pattern, well_known_regex,
// address, ip, ipv4, ipv6}, numbers {const, lt, lte, gt, gte, in, not_in}, bool.const,
// bytes {min_len, max_len}, enum {const, in, not_in}, repeated {min_items, max_items, unique,
// items}, map {min_pairs, max_pairs, keys, values}, duration and any {required, ...}; and
// `ignore_empty`. Other rule kinds are not used by the Envoy messages Sluice produces.

type Rules = Record<string, Record<string, unknown>>;

function rulesOf(field: protobuf.Field): Rules | undefined {
  const parsed = (field as unknown as { parsedOptions?: Record<string, unknown>[] }).parsedOptions ?? [];
  const parts = parsed.map((o) => o['(validate.rules)']).filter(isObject) as Rules[];
  if (!parts.length) return undefined;
  const rules: Rules = {};
  for (const part of parts) for (const [kind, r] of Object.entries(part)) rules[kind] = { ...rules[kind], ...r };
  return rules;
}

/** Proto3 default of a scalar field, to which rules apply when the field is absent. */
function defaultOf(field: protobuf.Field): Json {
  if (field.resolvedType instanceof protobuf.Enum) return field.resolvedType.valuesById[0] ?? 0;
  return field.type === 'string' || field.type === 'bytes' ? '' : field.type === 'bool' ? false : 0;
}

function checkRules(type: protobuf.Type, msg: Obj, path: string, ctx: Ctx): void {
  for (const field of type.fieldsArray) {
    const rules = rulesOf(field);
    if (!rules) continue;
    const present = hasOwn(msg, field.name);
    const at = join(path, field.name);
    // An unset member of a oneof is not checked at all (the oneof's own rule covers it).
    if (!present && oneofOf(field)) continue;
    if (!present && (field.partOf || field.resolvedType instanceof protobuf.Type)) {
      // Messages and proto3 `optional` fields have presence: only `required` speaks about absence.
      if (rules.message?.required || rules.duration?.required || rules.any?.required) ctx.add(at, 'is required');
      if (!field.repeated && !field.map) continue;
    }
    if (field.map) checkMapRules(field as unknown as protobuf.MapField, rules.map, isObject(msg[field.name]) ? (msg[field.name] as Obj) : {}, at, ctx);
    else if (field.repeated) {
      const items = Array.isArray(msg[field.name]) ? (msg[field.name] as Json[]) : [];
      const r = rules.repeated ?? {};
      if (r.min_items !== undefined && items.length < Number(r.min_items)) ctx.add(at, `needs at least ${r.min_items} item(s)`);
      if (r.max_items !== undefined && items.length > Number(r.max_items)) ctx.add(at, `allows at most ${r.max_items} item(s)`);
      if (r.unique && new Set(items.map((x) => JSON.stringify(x))).size !== items.length) ctx.add(at, 'items must be unique');
      if (isObject(r.items)) items.forEach((x, i) => checkValueRules(field, r.items as Rules, x, `${at}[${i}]`, ctx));
    } else checkValueRules(field, rules, present ? msg[field.name]! : defaultOf(field), at, ctx);
  }
}

function checkMapRules(field: protobuf.MapField, r: Record<string, unknown> | undefined, map: Obj, at: string, ctx: Ctx): void {
  if (!r) return;
  const n = Object.keys(map).length;
  if (r.min_pairs !== undefined && n < Number(r.min_pairs)) ctx.add(at, `needs at least ${r.min_pairs} entries`);
  if (r.max_pairs !== undefined && n > Number(r.max_pairs)) ctx.add(at, `allows at most ${r.max_pairs} entries`);
  for (const [k, v] of Object.entries(map)) {
    if (isObject(r.keys)) checkScalarRules(field.keyType, r.keys as Rules, k, `${at}[${JSON.stringify(k)}]`, ctx);
    if (isObject(r.values)) checkValueRules(field, r.values as Rules, v, `${at}[${JSON.stringify(k)}]`, ctx);
  }
}

function checkValueRules(field: protobuf.FieldBase, rules: Rules, v: Json, at: string, ctx: Ctx): void {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const r = rules.enum ?? {};
    const n = typeof v === 'string' ? rt.values[v] : (v as number);
    if (r.const !== undefined && n !== r.const) ctx.add(at, `must be ${rt.valuesById[r.const as number]}`);
    if (Array.isArray(r.in) && !r.in.includes(n)) ctx.add(at, `must be one of ${r.in.map((x) => rt.valuesById[x]).join(', ')}`);
    if (Array.isArray(r.not_in) && r.not_in.includes(n)) ctx.add(at, `must not be ${v}`);
    return;
  }
  if (!(rt instanceof protobuf.Type)) return checkScalarRules(field.type, rules, v, at, ctx);
  const name = nameOf(rt);
  if (name === 'google.protobuf.Duration' && rules.duration && typeof v === 'string') {
    const seconds = parseFloat(v);
    const limit = (x: unknown) => (isObject(x) ? Number(x.seconds ?? 0) + Number(x.nanos ?? 0) / 1e9 : 0);
    const cmp: [string, (a: number, b: number) => boolean, string][] = [
      ['gt', (a, b) => a > b, 'more than'],
      ['gte', (a, b) => a >= b, 'at least'],
      ['lt', (a, b) => a < b, 'less than'],
      ['lte', (a, b) => a <= b, 'at most'],
    ];
    for (const [key, ok, words] of cmp)
      if (rules.duration[key] !== undefined && !ok(seconds, limit(rules.duration[key]))) ctx.add(at, `must be ${words} ${limit(rules.duration[key])}s`);
  } else if (name === 'google.protobuf.Any' && rules.any && isObject(v)) {
    const { in: allowed, not_in: denied } = rules.any as { in?: string[]; not_in?: string[] };
    if (allowed && !allowed.includes(String(v['@type']))) ctx.add(at, `@type must be one of ${allowed.join(', ')}`);
    if (denied?.includes(String(v['@type']))) ctx.add(at, `@type ${v['@type']} is not allowed here`);
  } else if (WRAPPERS.has(name)) {
    checkScalarRules(rt.fields.value!.type, rules, v, at, ctx);
  }
}

/** protoc-gen-validate's well-known regexes: [strict, loose (`strict: false`)]. */
const HEADER_REGEX = {
  HTTP_HEADER_NAME: [/^:?[0-9a-zA-Z!#$%&'*+,\-.^_|~`]+$/, /^[^\u0000\u000A\u000D]*$/],
  HTTP_HEADER_VALUE: [/^[^\u0000-\u0008\u000A-\u001F\u007F]*$/, /^[^\u0000\u000A\u000D]*$/],
} as const;

/** RE2 patterns are mostly JavaScript patterns; one that JavaScript cannot compile is not checked. */
function matchesPattern(pattern: string, v: string): boolean {
  try {
    return new RegExp(pattern).test(v);
  } catch {
    return true;
  }
}

function checkScalarRules(type: string, rules: Rules, v: Json, at: string, ctx: Ctx): void {
  if (type === 'string' && rules.string && typeof v === 'string') {
    const r = rules.string;
    if (r.ignore_empty && v === '') return;
    const chars = [...v].length;
    const bytes = Buffer.byteLength(v);
    const fail = (msg: string) => ctx.add(at, `${JSON.stringify(v)} ${msg}`);
    if (r.min_len !== undefined && chars < Number(r.min_len)) fail(`is shorter than ${r.min_len} character(s)`);
    if (r.max_len !== undefined && chars > Number(r.max_len)) fail(`is longer than ${r.max_len} characters`);
    if (r.len !== undefined && chars !== Number(r.len)) fail(`must have ${r.len} characters`);
    if (r.min_bytes !== undefined && bytes < Number(r.min_bytes)) fail(`is shorter than ${r.min_bytes} byte(s)`);
    if (r.max_bytes !== undefined && bytes > Number(r.max_bytes)) fail(`is longer than ${r.max_bytes} bytes`);
    if (typeof r.prefix === 'string' && !v.startsWith(r.prefix)) fail(`must start with ${r.prefix}`);
    if (typeof r.suffix === 'string' && !v.endsWith(r.suffix)) fail(`must end with ${r.suffix}`);
    if (typeof r.contains === 'string' && !v.includes(r.contains)) fail(`must contain ${r.contains}`);
    if (Array.isArray(r.in) && !r.in.includes(v)) fail(`must be one of ${r.in.join(', ')}`);
    if (Array.isArray(r.not_in) && r.not_in.includes(v)) fail('is not allowed');
    if (typeof r.pattern === 'string' && !matchesPattern(r.pattern, v)) fail(`does not match ${r.pattern}`);
    const wk = HEADER_REGEX[r.well_known_regex as keyof typeof HEADER_REGEX];
    if (wk && !wk[r.strict === false ? 1 : 0].test(v)) fail(`is not a valid ${r.well_known_regex}`);
    if ((r.ip || r.address) && net.isIP(v) === 0 && !(r.address && /^[A-Za-z0-9.-]+$/.test(v))) fail('is not an address');
    if (r.ipv4 && !net.isIPv4(v)) fail('is not an IPv4 address');
    if (r.ipv6 && !net.isIPv6(v)) fail('is not an IPv6 address');
    return;
  }
  if (type === 'bool' && rules.bool?.const !== undefined && v !== rules.bool.const) return ctx.add(at, `must be ${rules.bool.const}`);
  if (type === 'bytes' && rules.bytes && typeof v === 'string') {
    const n = Buffer.from(v, 'base64').length;
    if (rules.bytes.min_len !== undefined && n < Number(rules.bytes.min_len)) ctx.add(at, `needs at least ${rules.bytes.min_len} byte(s)`);
    if (rules.bytes.max_len !== undefined && n > Number(rules.bytes.max_len)) ctx.add(at, `allows at most ${rules.bytes.max_len} bytes`);
    return;
  }
  const r = rules[type];
  if (!r || typeof v === 'boolean' || v === null || typeof v === 'object') return;
  const n = Number(v);
  if (r.ignore_empty && n === 0) return;
  const limits: [string, (a: number, b: number) => boolean, string][] = [
    ['const', (a, b) => a === b, 'equal to'],
    ['gt', (a, b) => a > b, 'more than'],
    ['gte', (a, b) => a >= b, 'at least'],
    ['lt', (a, b) => a < b, 'less than'],
    ['lte', (a, b) => a <= b, 'at most'],
  ];
  for (const [key, ok, words] of limits) if (r[key] !== undefined && !ok(n, Number(r[key]))) ctx.add(at, `${v} must be ${words} ${r[key]}`);
  if (Array.isArray(r.in) && !r.in.map(Number).includes(n)) ctx.add(at, `${v} must be one of ${r.in.join(', ')}`);
  if (Array.isArray(r.not_in) && r.not_in.map(Number).includes(n)) ctx.add(at, `${v} is not allowed`);
}

// ---------------------------------------------------------------------------------------------
// What Envoy checks in code when it loads a resource, beyond the annotations above.

type Rule = (msg: Obj, path: string, ctx: Ctx) => void;
const list = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const obj = (v: Json | undefined): Obj => (isObject(v) ? v : {});
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';

const ENVOY_RULES: Record<string, Rule> = {
  // Listener validation: a socket listener needs an address and something to run on it.
  'envoy.config.listener.v3.Listener': (l, path, ctx) => {
    if (l.api_listener || l.internal_listener) return;
    if (!l.address) ctx.add(path, 'a socket listener needs an address');
    if (!list(l.filter_chains).length && !l.default_filter_chain) ctx.add(path, 'a socket listener needs a filter chain');
  },
  // Extensions are found by the type of typed_config (lookup by name is gone since 1.2x).
  'envoy.config.listener.v3.Filter': (f, path, ctx) => needsTypedConfig(f, path, ctx),
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter': (f, path, ctx) => needsTypedConfig(f, path, ctx),
  // FilterChainUtility: the router is the terminal HTTP filter and must come last, once.
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager': (hcm, path, ctx) => {
    const filters = list(hcm.http_filters).map(obj);
    const isRouter = (f: Obj) => typeNameOfAny(f.typed_config) === ROUTER;
    if (!filters.length || !isRouter(filters[filters.length - 1]!)) ctx.add(join(path, 'http_filters'), 'the router filter must be the last HTTP filter');
    filters.slice(0, -1).forEach((f, i) => isRouter(f) && ctx.add(join(path, `http_filters[${i}]`), 'the router filter is terminal: nothing may follow it'));
  },
  // RouteConfiguration: virtual host names and domains are unique across the configuration.
  'envoy.config.route.v3.RouteConfiguration': (rc, path, ctx) => {
    const names = new Set<string>();
    const domains = new Map<string, string>();
    list(rc.virtual_hosts).map(obj).forEach((vh, i) => {
      const name = String(vh.name ?? '');
      if (names.has(name)) ctx.add(join(path, `virtual_hosts[${i}].name`), `duplicate virtual host name "${name}"`);
      names.add(name);
      for (const d of list(vh.domains).map(String)) {
        const other = domains.get(d.toLowerCase());
        if (other !== undefined) ctx.add(join(path, `virtual_hosts[${i}].domains`), `domain "${d}" is also in virtual host "${other}"`);
        domains.set(d.toLowerCase(), name);
      }
    });
  },
  // WeightedClusterSpecifierPlugin: weights sum above 0; each entry names a cluster one way.
  'envoy.config.route.v3.WeightedCluster': (wc, path, ctx) => {
    const clusters = list(wc.clusters).map(obj);
    const sum = clusters.reduce((s, c) => s + Number(c.weight ?? 0), 0);
    if (sum <= 0) ctx.add(join(path, 'clusters'), 'the weights must sum to more than 0');
    clusters.forEach((c, i) => {
      if (!c.name === !c.cluster_header) ctx.add(join(path, `clusters[${i}]`), 'set exactly one of name and cluster_header');
    });
  },
  // ShadowPolicyImpl (validateMirrorClusterSpecifier): exactly one of cluster and cluster_header.
  'envoy.config.route.v3.RouteAction.RequestMirrorPolicy': (p, path, ctx) => {
    if (!p.cluster === !p.cluster_header) ctx.add(path, 'a request mirror policy needs exactly one of cluster and cluster_header');
  },
  // Envoy compiles safe_regex with RE2: so does this check (Google's RE2 as WebAssembly).
  'envoy.type.matcher.v3.RegexMatcher': (m, path, ctx) => {
    const regex = String(m.regex ?? '');
    try {
      new RE2(regex, 'u');
    } catch (err) {
      ctx.add(join(path, 'regex'), `${JSON.stringify(regex)} is not valid RE2: ${(err as Error).message}`);
    }
  },
  // Cluster factories: EDS needs its config source; static and DNS clusters need hosts.
  'envoy.config.cluster.v3.Cluster': (c, path, ctx) => {
    const type = c.type ?? 'STATIC';
    if (type === 'EDS' && !obj(c.eds_cluster_config).eds_config) ctx.add(path, 'an EDS cluster needs eds_cluster_config.eds_config');
    if (['STATIC', 'STRICT_DNS', 'LOGICAL_DNS'].includes(String(type)) && !c.cluster_type && !list(obj(c.load_assignment).endpoints).length)
      ctx.add(path, `a ${type} cluster needs load_assignment.endpoints`);
  },
  // Bootstrap: ADS config sources need ads_config, whose gRPC service names a static cluster.
  'envoy.config.bootstrap.v3.Bootstrap': (b, path, ctx) => {
    const dyn = obj(b.dynamic_resources);
    const usesAds = ['cds_config', 'lds_config'].some((k) => obj(dyn[k]).ads !== undefined);
    const ads = obj(dyn.ads_config);
    if (usesAds && !dyn.ads_config) ctx.add(join(path, 'dynamic_resources'), 'cds_config/lds_config use ads but ads_config is missing');
    if (dyn.ads_config && !['GRPC', 'DELTA_GRPC'].includes(String(ads.api_type)))
      ctx.add(join(path, 'dynamic_resources.ads_config.api_type'), 'ADS needs GRPC or DELTA_GRPC');
    const statics = new Set(list(obj(b.static_resources).clusters).map((c) => String(obj(c).name)));
    list(ads.grpc_services).map(obj).forEach((s, i) => {
      const name = obj(s.envoy_grpc).cluster_name;
      if (name !== undefined && !statics.has(String(name)))
        ctx.add(join(path, `dynamic_resources.ads_config.grpc_services[${i}].envoy_grpc.cluster_name`), `unknown static cluster "${name}"`);
    });
  },
};

function needsTypedConfig(f: Obj, path: string, ctx: Ctx): void {
  if (!f.typed_config && !f.config_discovery && !f.is_optional) ctx.add(path, `filter "${f.name}" needs typed_config`);
}

/** The full type name in an Any's JSON form (`{"@type": ".../envoy.x.Y"}`), or undefined. */
function typeNameOfAny(any: Json | undefined): string | undefined {
  const url = obj(any)['@type'];
  return typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : undefined;
}
