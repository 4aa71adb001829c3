// Hand-rolled protobuf for the few discovery fields the load generator and the floor server
// touch on the hot path: strings and repeated strings of DiscoveryRequest/DiscoveryResponse,
// and gRPC length-prefixed framing. Anything richer (resources) is decoded with protobufjs,
// once per distinct version, outside the hot path.

const LEN = 2;
const VARINT = 0;
const I64 = 1;
const I32 = 5;

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Builds a message from length-delimited fields (strings or pre-encoded sub-messages). */
export class FieldWriter {
  private readonly parts: { tag: number; value: Buffer }[] = [];
  private size = 0;

  bytes(field: number, value: Buffer | Uint8Array): this {
    const tag = (field << 3) | LEN;
    const v = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.parts.push({ tag, value: v });
    this.size += varintSize(tag) + varintSize(v.length) + v.length;
    return this;
  }

  string(field: number, value: string): this {
    return value === '' ? this : this.bytes(field, Buffer.from(value, 'utf8'));
  }

  strings(field: number, values: readonly string[]): this {
    for (const v of values) this.bytes(field, Buffer.from(v, 'utf8'));
    return this;
  }

  /** The message, optionally with the 5-byte gRPC frame header in front. */
  finish(grpcFrame = false): Buffer {
    const head = grpcFrame ? 5 : 0;
    const out = Buffer.allocUnsafe(head + this.size);
    let pos = 0;
    if (grpcFrame) {
      out[0] = 0;
      out.writeUInt32BE(this.size, 1);
      pos = 5;
    }
    for (const { tag, value } of this.parts) {
      pos = writeVarint(out, pos, tag);
      pos = writeVarint(out, pos, value.length);
      value.copy(out, pos);
      pos += value.length;
    }
    return out;
  }
}

/** Calls `fn(field, start, end)` for every length-delimited field of a message; skips others. */
export function eachField(buf: Buffer, start: number, end: number, fn: (field: number, s: number, e: number) => void): void {
  let pos = start;
  while (pos < end) {
    let tag = 0;
    let shift = 0;
    let b: number;
    do {
      b = buf[pos++]!;
      tag += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    const wire = tag & 7;
    const field = Math.floor(tag / 8);
    if (wire === LEN) {
      let len = 0;
      shift = 0;
      do {
        b = buf[pos++]!;
        len += (b & 0x7f) * 2 ** shift;
        shift += 7;
      } while (b & 0x80);
      fn(field, pos, pos + len);
      pos += len;
    } else if (wire === VARINT) {
      while (buf[pos++]! & 0x80);
    } else if (wire === I64) pos += 8;
    else if (wire === I32) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

/** The scalar fields of a DiscoveryResponse (resources are left in the buffer). */
export interface ResponseHead {
  version: string;
  typeUrl: string;
  nonce: string;
}

export function parseResponseHead(buf: Buffer): ResponseHead {
  let version = '';
  let typeUrl = '';
  let nonce = '';
  eachField(buf, 0, buf.length, (f, s, e) => {
    if (f === 1) version = buf.toString('latin1', s, e);
    else if (f === 4) typeUrl = buf.toString('latin1', s, e);
    else if (f === 5) nonce = buf.toString('latin1', s, e);
  });
  return { version, typeUrl, nonce };
}

/** The request fields the floor server looks at. */
export interface RequestHead {
  typeUrl: string;
  nonce: string;
  names: string[];
  /** node.user_agent_name when the request carries a node. */
  userAgent?: string;
}

export function parseRequestHead(buf: Buffer): RequestHead {
  const head: RequestHead = { typeUrl: '', nonce: '', names: [] };
  eachField(buf, 0, buf.length, (f, s, e) => {
    if (f === 3) head.names.push(buf.toString('utf8', s, e));
    else if (f === 4) head.typeUrl = buf.toString('latin1', s, e);
    else if (f === 5) head.nonce = buf.toString('latin1', s, e);
    else if (f === 2)
      eachField(buf, s, e, (nf, ns, ne) => {
        if (nf === 6) head.userAgent = buf.toString('utf8', ns, ne);
      });
  });
  return head;
}

/** Splits a byte stream into gRPC messages (5-byte header: flag, big-endian length). */
export class GrpcDeframer {
  private pending: Buffer | null = null;

  push(chunk: Buffer, onMessage: (msg: Buffer) => void): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let pos = 0;
    while (buf.length - pos >= 5) {
      const len = buf.readUInt32BE(pos + 1);
      if (buf.length - pos - 5 < len) break;
      onMessage(buf.subarray(pos + 5, pos + 5 + len));
      pos += 5 + len;
    }
    if (pos < buf.length) this.pending = Buffer.from(buf.subarray(pos)); // copy: chunk may be reused
  }
}

export const RequestField = { versionInfo: 1, node: 2, resourceNames: 3, typeUrl: 4, nonce: 5, errorDetail: 6 } as const;
