// Server options: command-line flags, each also from SLUICE_<NAME> (API.md).
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { durationString } from './model/duration.js';

export const ConfigSchema = z.strictObject({
  xdsPort: z.coerce.number().int().min(0).max(65535).default(18000),
  httpPort: z.coerce.number().int().min(0).max(65535).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  dataDir: z.string().min(1).default('./data'),
  apiToken: z.string().min(1).optional(),
  xdsTlsCert: z.string().optional(),
  xdsTlsKey: z.string().optional(),
  xdsTlsCa: z.string().optional(),
  envoyListenerAddress: z.string().default('0.0.0.0'),
  envoyListenerPort: z.coerce.number().int().min(1).max(65535).default(10000),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** How often data-plane clients send load reports (LRS); analysis windows need several. */
  lrsInterval: durationString('1h').default('5s'),
  /** Rollout transitions are POSTed here (docs/analysis.md). */
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  webhookFormat: z.enum(['json', 'slack']).default('json'),
});
export type Config = z.infer<typeof ConfigSchema>;

const FLAGS = {
  'xds-port': 'xdsPort',
  'http-port': 'httpPort',
  host: 'host',
  'data-dir': 'dataDir',
  'api-token': 'apiToken',
  'xds-tls-cert': 'xdsTlsCert',
  'xds-tls-key': 'xdsTlsKey',
  'xds-tls-ca': 'xdsTlsCa',
  'envoy-listener-address': 'envoyListenerAddress',
  'envoy-listener-port': 'envoyListenerPort',
  'log-level': 'logLevel',
  'lrs-interval': 'lrsInterval',
  'webhook-url': 'webhookUrl',
  'webhook-format': 'webhookFormat',
} as const satisfies Record<string, keyof Config>;

export const FLAG_NAMES = Object.keys(FLAGS);

/** Flags win over SLUICE_* environment variables, which win over defaults. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }])),
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
    throw new Error(parsed.error.issues.map((i) => `--${flagOf(i.path[0]!)}: ${i.message}`).join('; '));
  }
  if (!!parsed.data.xdsTlsCert !== !!parsed.data.xdsTlsKey) throw new Error('--xds-tls-cert and --xds-tls-key go together');
  if (parsed.data.xdsTlsCa && !parsed.data.xdsTlsCert) throw new Error('--xds-tls-ca needs --xds-tls-cert and --xds-tls-key');
  return parsed.data;
}
