// Server options: command-line flags, each also from SLUICE_<NAME> (README "Run the server").
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { durationString } from './model/duration.js';

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
  'envoy-listener-address': 'envoyListenerAddress',
  'envoy-listener-port': 'envoyListenerPort',
  'envoy-routes': 'envoyRoutes',
  'log-level': 'logLevel',
  'lrs-interval': 'lrsInterval',
  'webhook-url': 'webhookUrl',
  'webhook-format': 'webhookFormat',
  'webhook-secret': 'webhookSecret',
} as const satisfies Record<string, keyof Config>;

/** Flags that take no value. */
const BOOLEAN_FLAGS = new Set<string>(['metrics-public']);
/** Flags that may be given more than once. */
const REPEATABLE_FLAGS = new Set<string>(['prometheus']);

export const FLAG_NAMES = Object.keys(FLAGS);

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
  return parsed.data;
}
