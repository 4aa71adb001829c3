// Hand assembly of the few discovery messages Sluice sends on the hot path. Protobuf lets a
// message be the concatenation of its fields, so a response is cached field bytes plus a
// per-stream nonce field: no per-stream encoding of resources.
import protobuf from 'protobufjs';

const LENGTH_DELIMITED = 2;

/** Encodes one length-delimited field (bytes, string or embedded message). */
export function bytesField(fieldNumber: number, value: Uint8Array | string): Buffer {
  const w = protobuf.Writer.create().uint32((fieldNumber << 3) | LENGTH_DELIMITED);
  if (typeof value === 'string') w.string(value);
  else w.bytes(value);
  return Buffer.from(w.finish());
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
