// Hand assembly of the few discovery messages Sluice sends on the hot path. Protobuf lets a
// message be the concatenation of its fields, so a response is cached field bytes plus a
// per-stream nonce field: no per-stream encoding of resources.
const LENGTH_DELIMITED = 2;

/** Encodes one length-delimited field (bytes, string or embedded message), in one allocation. */
export function bytesField(fieldNumber: number, value: Uint8Array | string): Buffer {
  const tag = (fieldNumber << 3) | LENGTH_DELIMITED;
  const len = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(len) + len);
  let pos = writeVarint(out, 0, tag);
  pos = writeVarint(out, pos, len);
  if (typeof value === 'string') out.write(value, pos, len, 'utf8');
  else out.set(value, pos);
  return out;
}

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** `body` followed by one string field, built in a single allocation: the per-stream part of a
 *  response (its nonce) appended to the cached bytes. Same bytes as concat([body, bytesField()]). */
export function appendStringField(body: Uint8Array, fieldNumber: number, value: string): Buffer {
  const len = Buffer.byteLength(value, 'utf8');
  const tag = (fieldNumber << 3) | LENGTH_DELIMITED;
  const out = Buffer.allocUnsafe(body.length + varintSize(tag) + varintSize(len) + len);
  out.set(body, 0);
  let pos = writeVarint(out, body.length, tag);
  pos = writeVarint(out, pos, len);
  out.write(value, pos, len, 'utf8');
  return out;
}

export function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

/** Field numbers of DiscoveryResponse / DeltaDiscoveryResponse / Resource (discovery.proto). */
export const Field = {
  response: { versionInfo: 1, resources: 2, typeUrl: 4, nonce: 5, controlPlane: 6 },
  deltaResponse: { systemVersionInfo: 1, resources: 2, typeUrl: 4, nonce: 5, removedResources: 6, controlPlane: 7 },
  resource: { version: 1, resource: 2, name: 3 },
  any: { typeUrl: 1, value: 2 },
  controlPlane: { identifier: 1 },
} as const;
