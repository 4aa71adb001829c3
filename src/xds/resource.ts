// An xDS resource encoded once per version. Every stream reuses these bytes.
import { createHash } from 'node:crypto';
import { Field, bytesField, concat } from './wire.js';

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

/** Wraps an encoded message as a cacheable resource. */
export function makeResource(
  typeUrl: string,
  name: string,
  message: Uint8Array,
  refs: Readonly<Record<string, readonly string[]>> = {},
): Resource {
  const any = concat([bytesField(Field.any.typeUrl, typeUrl), bytesField(Field.any.value, message)]);
  const version = hashBytes(any);
  const deltaBody = concat([
    bytesField(Field.resource.version, version),
    bytesField(Field.resource.resource, any),
    bytesField(Field.resource.name, name),
  ]);
  return {
    typeUrl,
    name,
    version,
    any,
    sotwField: bytesField(Field.response.resources, any),
    deltaField: bytesField(Field.deltaResponse.resources, deltaBody),
    refs,
  };
}
