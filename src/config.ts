// Server options: command-line flags, each also from SLUICE_<NAME> (README "Run the server").
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { durationString, parseDuration } from './model/duration.js';

const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `--prometheus NAME=URL` (repeatable, or comma-separated in SLUICE_PROMETHEUS) → {NAME: URL}.
 *  Messages name the provider, never the URL: it may carry credentials. */
const PrometheusProviders = z.preprocess(
  (v, ctx) => {
    if (typeof v !== 'string' && !Array.isArray(v)) return v;
    const out: Record<string, string> = {};
    for (const item of (Array.isArray(v) ? v : [v]).flatMap((s) => String(s).split(',')).map((s) => s.trim()).filter(Boolean)) {
      const eq = item.indexOf('=');
      const name = item.slice(0, Math.max(eq, 0));
      if (eq <= 0) ctx.addIssue({ code: 'custom', message: 'expected NAME=URL, e.g. main=http://prometheus:9090' });
      else if (name in out) ctx.addIssue({ code: 'custom', message: `provider "${name}" is given twice` });
      else out[name] = item.slice(eq + 1);
    }
    return out;
  },
  z.record(z.string(), z.string()).superRefine((providers, ctx) => {
    for (const [name, url] of Object.entries(providers)) {
      if (!PROVIDER_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `provider name "${name}" must be 1-63 letters, digits, ".", "_" or "-"` });
      if (!z.url({ protocol: /^https?$/ }).safeParse(url).success) ctx.addIssue({ code: 'custom', message: `provider "${name}": the URL must be http:// or https://` });
    }
  }),
);

/** `--store`: where the desired state lives. `etcd://h:p,h:p` (or `etcds://` for TLS, or a list
 *  of http(s):// URLs) is an etcd cluster shared by replicas; unset, the file store in --data-dir. */
const StoreUrl = z.string().transform((v, ctx) => {
  const m = /^(etcds?):\/\/(.+)$/.exec(v);
  const items = m ? m[2]!.split(',').map((h) => `${m[1] === 'etcds' ? 'https' : 'http'}://${h.trim()}`) : v.split(',').map((h) => h.trim());
  const hosts: string[] = [];
  for (const item of items) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${item.replace(/\/\/[^@/]*@/, '//')}" is not host:port; expected etcd://host:port,host:port (etcds:// for TLS)` });
      return z.NEVER;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || !url.port || url.pathname !== '/' || url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: `"${url.host || item}": expected etcd://host:port,host:port (etcds:// for TLS; credentials go in --etcd-user and --etcd-password)` });
      return z.NEVER;
    }
    hosts.push(`${url.protocol}//${url.host}`);
  }
  return { kind: 'etcd' as const, hosts };
});

/** Whether a duration is whole seconds (one that does not parse is reported by its own check). */
function wholeSeconds(text: string): boolean {
  try {
    return parseDuration(text) % 1000 === 0;
  } catch {
    return true;
  }
}

/** Ids end up in etcd keys (`replicas/<id>`) and logs. */
const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export function defaultReplicaId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100) || 'sluice';
  return `${host}-${process.pid}`;
}

/** A boolean flag: true when given; from the environment "true"/"1"/"false"/"0". */
const BoolFlag = z.union([z.boolean(), z.stringbool({ truthy: ['true', '1'], falsy: ['false', '0'] })], { error: 'must be true, false, 1 or 0' });

export const ConfigSchema = z.strictObject({
  xdsPort: z.coerce.number().int().min(0).max(65535).default(18000),
  httpPort: z.coerce.number().int().min(0).max(65535).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  dataDir: z.string().min(1).default('./data'),
  /** One admin token (named "admin"); kept for compatibility with --api-tokens' single-token case. */
  apiToken: z.string().min(1).optional(),
  /** Named tokens with roles (YAML or JSON, reloaded on change): README "Securing Sluice". */
  apiTokens: z.string().min(1).optional(),
  /** Append-only JSON lines of every state-changing and every refused request (default <data-dir>/audit.log). */
  auditLog: z.string().min(1).optional(),
  /** GET /metrics without a token even when tokens are configured. */
  metricsPublic: BoolFlag.default(false),
  /** Prometheus endpoints analysis metrics may name (`prometheus: {provider: NAME, ...}`). */
  prometheus: PrometheusProviders.default({}),
  /** Bounds on what one xDS client may send (src/xds/limits.ts has the defaults and the rest). */
  xdsMaxNamesPerRequest: z.coerce.number().int().min(1).optional(),
  xdsMaxSubscribedNames: z.coerce.number().int().min(1).optional(),
  xdsMaxNodeMetadataBytes: z.coerce.number().int().min(1).optional(),
  xdsMaxRequestBytes: z.coerce.number().int().min(1024).optional(),
  xdsMaxStreamsPerConnection: z.coerce.number().int().min(1).optional(),
  xdsTlsCert: z.string().optional(),
  xdsTlsKey: z.string().optional(),
  xdsTlsCa: z.string().optional(),
  /** Which client identities may claim which nodes and read which services (YAML or JSON, reloaded on change; needs --xds-tls-ca). */
  xdsPolicy: z.string().min(1).optional(),
  envoyListenerAddress: z.string().default('0.0.0.0'),
  envoyListenerPort: z.coerce.number().int().min(1).max(65535).default(10000),
  /** Envoy's routes: one route configuration with a virtual host per service, or scoped routes
   *  (a route configuration per service, picked by the exact host; docs/envoy.md). */
  envoyRoutes: z.enum(['single', 'scoped']).default('single'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** How often data-plane clients send load reports (LRS); analysis windows need several. */
  lrsInterval: durationString('1h').default('5s'),
  /** Rollout transitions are POSTed here (docs/analysis.md). */
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  webhookFormat: z.enum(['json', 'slack']).default('json'),
  /** HMAC-SHA256 key: each delivery carries X-Sluice-Timestamp and X-Sluice-Signature. */
  webhookSecret: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Shared store for several replicas (README "Run several replicas"); default: the file store. */
  store: StoreUrl.optional(),
  /** TLS to etcd: CA of its server certificate, and a client certificate and key (files). */
  etcdCa: z.string().min(1).optional(),
  etcdCert: z.string().min(1).optional(),
  etcdKey: z.string().min(1).optional(),
  etcdUser: z.string().min(1).optional(),
  /** Never logged; or from --etcd-password-file / SLUICE_ETCD_PASSWORD. */
  etcdPassword: z.string().min(1).optional(),
  etcdPasswordFile: z.string().min(1).optional(),
  /** Deadline of each etcd call: past it (etcd down, no quorum) a change answers 503. */
  etcdTimeout: durationString('1m').default('2s'),
  /** Every key Sluice writes to etcd is under this prefix. */
  etcdPrefix: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*\/$/, 'must be letters, digits, ".", "_", "-" and "/", ending with "/"').default('sluice/'),
  /** This replica's name in the fleet view and the leader election (default <hostname>-<pid>). */
  replicaId: z.string().regex(REPLICA_ID, 'must be 1-128 letters, digits, ".", "_" or "-"').optional(),
  /** How long a dead replica keeps leadership (and its nodes in the fleet view): its lease's TTL. */
  leaseTtl: durationString('5m')
    .refine(wholeSeconds, 'must be whole seconds (etcd leases count in seconds)')
    .default('10s'),
});
export type Config = z.infer<typeof ConfigSchema>;

const FLAGS = {
  'xds-port': 'xdsPort',
  'http-port': 'httpPort',
  host: 'host',
  'data-dir': 'dataDir',
  'api-token': 'apiToken',
  'api-tokens': 'apiTokens',
  'audit-log': 'auditLog',
  'metrics-public': 'metricsPublic',
  prometheus: 'prometheus',
  'xds-max-names-per-request': 'xdsMaxNamesPerRequest',
  'xds-max-subscribed-names': 'xdsMaxSubscribedNames',
  'xds-max-node-metadata-bytes': 'xdsMaxNodeMetadataBytes',
  'xds-max-request-bytes': 'xdsMaxRequestBytes',
  'xds-max-streams-per-connection': 'xdsMaxStreamsPerConnection',
  'xds-tls-cert': 'xdsTlsCert',
  'xds-tls-key': 'xdsTlsKey',
  'xds-tls-ca': 'xdsTlsCa',
  'xds-policy': 'xdsPolicy',
  'envoy-listener-address': 'envoyListenerAddress',
  'envoy-listener-port': 'envoyListenerPort',
  'envoy-routes': 'envoyRoutes',
  'log-level': 'logLevel',
  'lrs-interval': 'lrsInterval',
  'webhook-url': 'webhookUrl',
  'webhook-format': 'webhookFormat',
  'webhook-secret': 'webhookSecret',
  store: 'store',
  'etcd-ca': 'etcdCa',
  'etcd-cert': 'etcdCert',
  'etcd-key': 'etcdKey',
  'etcd-user': 'etcdUser',
  'etcd-password': 'etcdPassword',
  'etcd-password-file': 'etcdPasswordFile',
  'etcd-prefix': 'etcdPrefix',
  'etcd-timeout': 'etcdTimeout',
  'replica-id': 'replicaId',
  'lease-ttl': 'leaseTtl',
} as const satisfies Record<string, keyof Config>;

/** Flags that take no value. */
const BOOLEAN_FLAGS = new Set<string>(['metrics-public']);
/** Flags that may be given more than once. */
const REPEATABLE_FLAGS = new Set<string>(['prometheus']);

export const FLAG_NAMES = Object.keys(FLAGS);

function flagName(key: keyof Config): string {
  return Object.entries(FLAGS).find(([, v]) => v === key)?.[0] ?? String(key);
}

/** The etcd password: --etcd-password, SLUICE_ETCD_PASSWORD or the file's first line. */
export function etcdPassword(config: Config): string | undefined {
  if (config.etcdPassword) return config.etcdPassword;
  if (!config.etcdPasswordFile) return undefined;
  const text = fs.readFileSync(config.etcdPasswordFile, 'utf8').split(/\r?\n/)[0] ?? '';
  if (!text) throw new Error(`--etcd-password-file ${config.etcdPasswordFile} is empty`);
  return text;
}

/** Flags win over SLUICE_* environment variables, which win over defaults. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(
      Object.keys(FLAGS).map((f) => [f, BOOLEAN_FLAGS.has(f) ? { type: 'boolean' as const } : { type: 'string' as const, multiple: REPEATABLE_FLAGS.has(f) }]),
    ),
    strict: true,
  });
  const raw: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(FLAGS)) {
    const envName = `SLUICE_${flag.replace(/-/g, '_').toUpperCase()}`;
    const v = values[flag] ?? env[envName];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const flagOf = (k: PropertyKey) => Object.entries(FLAGS).find(([, v]) => v === k)?.[0] ?? String(k);
    throw new Error(parsed.error.issues.map((i) => `--${flagOf(i.path[0]!)}${i.path.length > 1 ? ` ${i.path.slice(1).join('.')}` : ''}: ${i.message}`).join('; '));
  }
  if (!!parsed.data.xdsTlsCert !== !!parsed.data.xdsTlsKey) throw new Error('--xds-tls-cert and --xds-tls-key go together');
  if (parsed.data.xdsTlsCa && !parsed.data.xdsTlsCert) throw new Error('--xds-tls-ca needs --xds-tls-cert and --xds-tls-key');
  const d = parsed.data;
  if (d.xdsPolicy && !d.xdsTlsCa)
    throw new Error('--xds-policy needs mutual TLS (--xds-tls-cert, --xds-tls-key and --xds-tls-ca): identities come from client certificates');
  const etcdFlags = (['etcdCa', 'etcdCert', 'etcdKey', 'etcdUser', 'etcdPassword', 'etcdPasswordFile'] as const).filter((k) => d[k] !== undefined);
  if (!d.store && etcdFlags.length) throw new Error(`--${flagName(etcdFlags[0]!)} needs --store etcd://host:port,...`);
  if (!!d.etcdCert !== !!d.etcdKey) throw new Error('--etcd-cert and --etcd-key go together');
  if (d.etcdPassword && d.etcdPasswordFile) throw new Error('give --etcd-password or --etcd-password-file, not both');
  if (!!d.etcdUser !== !!(d.etcdPassword || d.etcdPasswordFile)) throw new Error('--etcd-user needs --etcd-password (or --etcd-password-file), and the other way round');
  if ((d.etcdCa || d.etcdCert) && d.store?.hosts.some((h) => h.startsWith('http:')))
    throw new Error('--etcd-ca/--etcd-cert need TLS to etcd: use etcds://host:port,... in --store');
  return d;
}
