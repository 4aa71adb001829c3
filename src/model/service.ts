// A service and its versions, as users declare them over REST. No dependencies beyond zod.
import { isIP } from 'node:net';
import { z } from 'zod';
import { durationString } from './duration.js';

export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const nameMessage = 'letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters';
export const NameSchema = z.string().regex(NAME, nameMessage);

export const EndpointSchema = z.strictObject({
  address: z.string().refine((a) => isIP(a) !== 0, 'must be an IPv4 or IPv6 address (EDS endpoints are not resolved)'),
  port: z.int().min(1).max(65535),
  weight: z.int().min(1).max(1_000_000).optional(),
});

export const VersionSchema = z.strictObject({
  endpoints: z.array(EndpointSchema).min(1, 'a version needs at least one endpoint').max(10_000),
  /** Envoy cluster name; default `<service>-<version>`. */
  cluster: NameSchema.optional(),
  /** Upstream protocol for Envoy: gRPC backends need HTTP/2. */
  protocol: z.enum(['http1', 'http2', 'grpc']).optional(),
});

/** Conditions a request is retried on. gRPC clients honour only the gRPC status ones. */
export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
export const GRPC_RETRY_ON: readonly string[] = ['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'];

export const RetriesSchema = z.strictObject({
  /** Tries in all, the first one included (gRPC clients cap this at 5). */
  attempts: z.int().min(2).max(10),
  on: z.array(z.enum(RETRY_ON)).min(1).default(['connect-failure', 'refused-stream', 'unavailable']),
  /** Envoy only. */
  perTryTimeout: durationString('5m').optional(),
});

const DomainSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(\*|\*?[A-Za-z0-9._-]+(:[0-9*]+)?\*?)$/, 'a host name, optionally with a port or a leading/trailing "*"');

export const ServiceSchema = z
  .strictObject({
    versions: z
      .record(NameSchema, VersionSchema)
      .refine((v) => Object.keys(v).length > 0, 'at least one version is required'),
    stable: NameSchema,
    domains: z.array(DomainSchema).min(1).max(100).optional(),
    /** Whole-request timeout (Envoy: route timeout; gRPC: max stream duration). */
    timeout: durationString('1h').optional(),
    retries: RetriesSchema.optional(),
  })
  .superRefine((s, ctx) => {
    if (!Object.hasOwn(s.versions, s.stable))
      ctx.addIssue({ code: 'custom', path: ['stable'], message: `"${s.stable}" is not one of the versions` });
    if (s.domains && new Set(s.domains.map((d) => d.toLowerCase())).size !== s.domains.length)
      ctx.addIssue({ code: 'custom', path: ['domains'], message: 'domains must be unique' });
  });

export type Endpoint = z.infer<typeof EndpointSchema>;
export type Version = z.infer<typeof VersionSchema>;
export type Service = z.infer<typeof ServiceSchema>;

/** A service as stored: its spec plus the name it is reached by. */
export interface NamedService extends Service {
  name: string;
}

/** Whether `version` is one of the service's own versions (never an `Object.prototype` name). */
export function hasVersion(spec: Service, version: string): boolean {
  return Object.hasOwn(spec.versions, version);
}

export function clusterName(service: string, version: string, spec: Service): string {
  const explicit = hasVersion(spec, version) ? spec.versions[version]!.cluster : undefined;
  return explicit ?? `${service}-${version}`;
}

/** Every cluster a service declares, with the version that declares it. */
export function clustersOf(service: NamedService): { cluster: string; version: string }[] {
  return Object.keys(service.versions).map((version) => ({ cluster: clusterName(service.name, version, service), version }));
}

export function domainsOf(service: NamedService): string[] {
  return service.domains ?? [service.name, `${service.name}:*`];
}
