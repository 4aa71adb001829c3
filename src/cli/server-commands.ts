// Commands that run something here: serve (the control plane), demo, demo-backend, loadgen.
// Their options are the same as before the CLI used commander; `serve` still hands its flags
// to parseConfig, which owns their meaning and the SLUICE_* environment variables.
import { Command, Option } from 'commander';
import { FLAG_NAMES, parseConfig } from '../config.js';
import { parseDuration } from '../model/duration.js';

/** What `serve --help` says per flag; a flag config.ts adds later still shows up, unexplained. */
const SERVE_FLAG_HELP: Record<string, string> = {
  'xds-port': 'gRPC port for xDS (default 18000)',
  'http-port': 'REST API, dashboard and /metrics (default 8080)',
  host: 'address both listen on (default 127.0.0.1; 0.0.0.0 in containers)',
  'data-dir': 'where the embedded store keeps its files (default ./data)',
  'api-token': 'bearer token every API request must carry',
  'xds-tls-cert': 'serve xDS over TLS: certificate (PEM file)',
  'xds-tls-key': 'serve xDS over TLS: private key (PEM file)',
  'xds-tls-ca': 'with the two above: mutual TLS, clients need a certificate this CA signed',
  'envoy-listener-address': 'address of the listener Envoy nodes get (default 0.0.0.0)',
  'envoy-listener-port': 'port of the listener Envoy nodes get (default 10000)',
  'envoy-routes': 'single (default: one route configuration for every service) or scoped (one per service, by exact host)',
  'log-level': 'trace, debug, info, warn, error, fatal or silent (default info)',
  'lrs-interval': 'how often proxyless gRPC clients send load reports (default 5s)',
  'webhook-url': 'POST rollout transitions there',
  'webhook-format': 'json (default) or slack',
};

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Runs until SIGTERM/SIGINT (as PID 1 in a container Node ignores SIGTERM unless handled). */
function untilSignal(stop: () => Promise<unknown>): Promise<void> {
  return new Promise(() => {
    const done = () => void stop().finally(() => process.exit(0));
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
}

const DEMO_DEPENDENCY = '@grpc/grpc-js-xds';

/** The demo's gRPC clients need a dev dependency that production installs leave out. */
export function checkDemoDependency(specifier = DEMO_DEPENDENCY): void {
  try {
    import.meta.resolve(specifier);
  } catch {
    throw new Error(
      `the demo needs ${specifier}, a development dependency that production installs (npm ci --omit=dev, the container image) leave out.\n` +
        `Run it from a checkout with all dependencies: npm ci && npm run demo (or: npm install ${specifier}).`,
    );
  }
}

function serveCommand(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the control plane: xDS on --xds-port, REST API and dashboard on --http-port')
    .addHelpText(
      'after',
      `
Every option can also come from SLUICE_<NAME> (SLUICE_XDS_PORT=18000); flags win.
SIGTERM and SIGINT shut down gracefully. In a container run it as
  node bin/sluice.js serve        (exec form, so the signal reaches Node)
never through npx or npm run, which may not pass SIGTERM on.`,
    );
  for (const flag of FLAG_NAMES) serve.option(`--${flag} <value>`, SERVE_FLAG_HELP[flag] ?? 'see README');
  serve.action(async (opts: Record<string, string>) => {
    // Back to argv: parseConfig owns validation, defaults and the environment variables.
    const argv = FLAG_NAMES.flatMap((f) => (opts[camel(f)] !== undefined ? [`--${f}`, opts[camel(f)]!] : []));
    const { startSluice } = await import('../main.js');
    const sluice = await startSluice(parseConfig(argv));
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${signal}: shutting down\n`);
      await sluice.stop();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });
}

function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('a whole rollout and rollback on this machine, with real gRPC clients (needs the dev dependencies: npm ci)')
    .option('--clients <n>', 'proxyless gRPC client processes, 1 to 20', '3')
    .option('--keep-running', 'keep serving after the scripted rollout (Ctrl-C to stop)', false)
    .option('--xds-port <port>', 'xDS port (default: a free one)', '0')
    .option('--http-port <port>', 'REST port (default: a free one)', '0')
    .action(async (opts: { clients: string; keepRunning: boolean; xdsPort: string; httpPort: string }) => {
      const clients = Number(opts.clients);
      if (!Number.isInteger(clients) || clients < 1 || clients > 20) throw new Error('--clients: 1 to 20');
      checkDemoDependency();
      const { runDemo } = await import('../demo/demo.js');
      await runDemo({ clients, keepRunning: opts.keepRunning, xdsPort: Number(opts.xdsPort), httpPort: Number(opts.httpPort) });
      process.exit(0);
    });
}

function demoBackendCommand(program: Command): void {
  program
    .command('demo-backend')
    .description('an HTTP backend answering its version, for the docker-compose demo')
    .requiredOption('--version <v>', 'the version it answers with')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', '8000')
    .option('--error-rate <0..1>', 'share of requests answered with 503', '0')
    .option('--latency-ms <n>', 'added latency per request', '0')
    .action(async (opts: { version: string; host: string; port: string; errorRate: string; latencyMs: string }) => {
      const { startHttpBackend } = await import('../demo/http-backend.js');
      const backend = await startHttpBackend({
        version: opts.version,
        host: opts.host,
        port: Number(opts.port),
        errorRate: Number(opts.errorRate),
        latencyMs: Number(opts.latencyMs),
      });
      process.stderr.write(`demo backend ${opts.version} on ${opts.host}:${backend.port}\n`);
      await untilSignal(() => backend.stop());
    });
}

function loadgenCommand(program: Command): void {
  program
    .command('loadgen')
    .description('steady HTTP load through Envoy, printing the share of answers per version')
    .requiredOption('--url <url>', 'where to send requests')
    .option('--host <host>', 'Host header (selects the virtual host)')
    .option('--rps <n>', 'requests per second', '20')
    .option('--interval <duration>', 'how often to print the shares', '5s')
    .addOption(new Option('--header <name: value>', 'extra request header (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]))
    .action(async (opts: { url: string; host?: string; rps: string; interval: string; header?: string[] }) => {
      const headers: Record<string, string> = {};
      for (const h of opts.header ?? []) {
        const colon = h.indexOf(':');
        if (colon < 1) throw new Error(`--header "${h}": expected "name: value"`);
        headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
      }
      const { startLoadgen } = await import('../demo/loadgen.js');
      const gen = startLoadgen({ url: opts.url, host: opts.host, rps: Number(opts.rps), intervalMs: parseDuration(opts.interval), headers });
      await untilSignal(() => gen.stop());
    });
}

export function registerServerCommands(program: Command): void {
  serveCommand(program);
  demoCommand(program);
  demoBackendCommand(program);
  loadgenCommand(program);
}
