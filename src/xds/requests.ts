// Decoding of DiscoveryRequest on the hot path. Every ACK is a request, so the scalar and
// repeated-string fields are read straight off the wire; only the rare nested messages (node —
// on the first request of a stream —, error_detail, resource locators) go through protobufjs.
// The result is the same plain object protobufjs' `toObject` gives (snake_case, defaults filled
// in), so the streams see no difference; anything unusual is decoded by protobufjs itself.
import protobuf from 'protobufjs';
import type { RawNode } from './node.js';
import { messageType, TypeUrl } from './protos.js';
import type { DiscoveryRequest } from './sotw-stream.js';
import type { DeltaDiscoveryRequest } from './delta-stream.js';

/** The options the whole-message decode used; nested messages are still converted with them. */
const toObjectOptions = { longs: String, enums: Number, defaults: true, arrays: true, objects: true } as const;

const NODE = 'envoy.config.core.v3.Node';
const STATUS = 'google.rpc.Status';
const LOCATOR = 'envoy.service.discovery.v3.ResourceLocator';

/** Known type URLs, returned as the constant strings (no decoding, and Map lookups keyed by
 *  them hash nothing): every request carries one. */
const INTERNED = Object.values(TypeUrl).map((url) => ({ url, bytes: Buffer.from(url, 'latin1') }));

function typeUrlAt(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  for (const { url, bytes } of INTERNED) {
    if (bytes.length !== len) continue;
    let i = len - 1; // type URLs share their prefix: compare from the end
    while (i >= 0 && buf[start + i] === bytes[i]) i--;
    if (i < 0) return url;
  }
  return buf.toString('utf8', start, end);
}

const NOT_FAST = Symbol('not fast');

/**
 * The common request (scalar and repeated-string fields, maybe a node or an error detail) in one
 * pass over the buffer, without a Reader. Anything unusual — a wire type that does not fit the
 * field, a group, a truncated field — returns NOT_FAST, and the caller decodes the whole
 * request the protobufjs way, so malformed input behaves exactly as it did before.
 */
function fastDecode(buf: Buffer): (DiscoveryRequest & { resource_locators: unknown[] }) | typeof NOT_FAST {
  let version_info = '';
  let node: DiscoveryRequest['node'] = null;
  const resource_names: string[] = [];
  const resource_locators: unknown[] = [];
  let type_url = '';
  let response_nonce = '';
  let error_detail: DiscoveryRequest['error_detail'] = null;
  const n = buf.length;
  let pos = 0;
  while (pos < n) {
    // tag (field numbers up to 15 fit one byte; larger ones take the slow path)
    const tag = buf[pos++]!;
    if (tag & 0x80) return NOT_FAST;
    const wire = tag & 7;
    if (wire === 0) {
      // varint: skip
      while (pos < n && buf[pos]! & 0x80) pos++;
      if (pos >= n) return NOT_FAST;
      pos++;
      if ((tag >>> 3) <= 7) return NOT_FAST; // a known field with the wrong wire type
      continue;
    }
    if (wire !== 2) return NOT_FAST;
    let len = 0;
    let shift = 0;
    let b: number;
    do {
      if (pos >= n || shift > 28) return NOT_FAST;
      b = buf[pos++]!;
      len |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    const end = pos + len;
    if (len < 0 || end > n) return NOT_FAST;
    switch (tag >>> 3) {
      case 1:
        version_info = buf.toString('utf8', pos, end);
        break;
      case 2:
        node = decodeNode(buf, pos, end);
        break;
      case 3:
        resource_names.push(buf.toString('utf8', pos, end));
        break;
      case 4:
        type_url = typeUrlAt(buf, pos, end);
        break;
      case 5:
        response_nonce = buf.toString('utf8', pos, end);
        break;
      case 6:
        error_detail = nestedAt(STATUS, buf, pos, end) as DiscoveryRequest['error_detail'];
        break;
      case 7:
        resource_locators.push(nestedAt(LOCATOR, buf, pos, end));
        break;
    }
    pos = end;
  }
  return { version_info, node, resource_names, resource_locators, type_url, response_nonce, error_detail };
}

/** Node field numbers: in DiscoveryRequest, in DeltaDiscoveryRequest, and metadata in Node. */
const NODE_FIELD = { sotw: 2, delta: 1, metadata: 3 } as const;

/** The node with its encoded size and its metadata's, which the stream bounds (limits.ts).
 *  Sizes are read off the wire: a decoded Struct says nothing of what it cost to send. */
function decodeNode(buf: Buffer, start: number, end: number): RawNode {
  const node = nestedAt(NODE, buf, start, end) as RawNode;
  node.encoded_size = end - start;
  node.metadata_size = spans(buf, start, end, NODE_FIELD.metadata).reduce((n, [s, e]) => n + (e - s), 0);
  return node;
}

/** [start, end) of each occurrence of a length-delimited field among the fields in [start, end). */
function spans(buf: Uint8Array, start: number, end: number, field: number): [number, number][] {
  const reader = protobuf.Reader.create(buf.subarray(start, end));
  const out: [number, number][] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === field && (tag & 7) === 2) {
      const len = reader.uint32();
      out.push([start + reader.pos, start + reader.pos + len]);
      reader.skip(len);
    } else reader.skipType(tag & 7);
  }
  return out;
}

/** The decoded node of a request decoded whole by protobufjs, measured like decodeNode. */
function measureNode(req: { node?: RawNode | null }, buf: Uint8Array, field: number): void {
  if (!req.node) return;
  // Several occurrences of a message field merge: measure them all.
  const found = spans(buf, 0, buf.length, field);
  req.node.encoded_size = found.reduce((n, [s, e]) => n + (e - s), 0);
  req.node.metadata_size = 0;
  for (const [s, e] of found)
    for (const [ms, me] of spans(buf, s, e, NODE_FIELD.metadata)) req.node.metadata_size += me - ms;
}

function nestedAt(typeName: string, buf: Buffer, start: number, end: number): Record<string, unknown> {
  const t = messageType(typeName);
  return t.toObject(t.decode(buf.subarray(start, end)), toObjectOptions);
}

export function decodeDiscoveryRequest(buf: Uint8Array): DiscoveryRequest & { resource_locators: unknown[] } {
  if (Buffer.isBuffer(buf)) {
    const fast = fastDecode(buf);
    if (fast !== NOT_FAST) return fast;
  }
  return slowDecodeDiscoveryRequest(buf);
}

/** Anything the fast path does not take is decoded by protobufjs itself. */
function slowDecodeDiscoveryRequest(buf: Uint8Array): DiscoveryRequest & { resource_locators: unknown[] } {
  const t = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const req = t.toObject(t.decode(buf), toObjectOptions) as DiscoveryRequest & { resource_locators: unknown[] };
  measureNode(req, buf, NODE_FIELD.sotw);
  return req;
}

/** Delta requests are fewer (one per changed batch, not per poll): protobufjs decodes them. */
export function decodeDeltaDiscoveryRequest(buf: Uint8Array): DeltaDiscoveryRequest {
  const t = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const req = t.toObject(t.decode(buf), toObjectOptions) as DeltaDiscoveryRequest;
  measureNode(req, buf, NODE_FIELD.delta);
  return req;
}
