// `sluice <command>`: serve (the control plane), demo, demo-backend.
import { parseConfig, FLAG_NAMES } from '../config.js';
import { startSluice } from '../main.js';
import { runDemo } from '../demo/demo.js';
import { CLIENT_USAGE, clientCommand } from './client.js';
import { startHttpBackend } from '../demo/http-backend.js';
import { startLoadgen } from '../demo/loadgen.js';
import { parseDuration } from '../model/duration.js';
import { parseArgs } from 'node:util';

const USAGE = `usage: sluice <command> [options]

commands:
  serve         run the control plane (xDS on --xds-port, REST on --http-port)
  demo          a whole rollout and rollback on this machine, with real gRPC clients
                (--clients N, --keep-running, --xds-port, --http-port; ports default to free ones)
  demo-backend  an HTTP backend answering its version, for the docker-compose demo
                (--version V, --host, --port 8000, --error-rate 0..1, --latency-ms N)
  loadgen       steady HTTP load through Envoy, printing the share of answers per version
                (--url URL, --host HOST, --rps 20, --interval 5s, --header 'name: value' ...)

serve options (each also from SLUICE_<NAME>, e.g. SLUICE_XDS_PORT):
${FLAG_NAMES.map((f) => `  --${f}`).join('\n')}

${CLIENT_USAGE}
`;

async function serve(argv: string[]): Promise<void> {
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
}

async function demo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string', default: '3' },
      'keep-running': { type: 'boolean', default: false },
      'xds-port': { type: 'string', default: '0' },
      'http-port': { type: 'string', default: '0' },
    },
    strict: true,
  });
  const clients = Number(values.clients);
  if (!Number.isInteger(clients) || clients < 1 || clients > 20) throw new Error('--clients: 1 to 20');
  await runDemo({
    clients,
    keepRunning: values['keep-running'],
    xdsPort: Number(values['xds-port']),
    httpPort: Number(values['http-port']),
  });
  process.exit(0);
}

/** Runs until SIGTERM/SIGINT (as PID 1 in a container Node ignores SIGTERM unless handled). */
function untilSignal(stop: () => Promise<unknown>): Promise<void> {
  return new Promise(() => {
    const done = () => void stop().finally(() => process.exit(0));
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
}

async function demoBackend(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      version: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      'error-rate': { type: 'string', default: '0' },
      'latency-ms': { type: 'string', default: '0' },
    },
  });
  if (!values.version) throw new Error('--version is required');
  const backend = await startHttpBackend({
    version: values.version,
    host: values.host,
    port: Number(values.port),
    errorRate: Number(values['error-rate']),
    latencyMs: Number(values['latency-ms']),
  });
  process.stderr.write(`demo backend ${values.version} on ${values.host}:${backend.port}\n`);
  await untilSignal(() => backend.stop());
}

async function loadgen(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      host: { type: 'string' },
      rps: { type: 'string', default: '20' },
      interval: { type: 'string', default: '5s' },
      header: { type: 'string', multiple: true, default: [] },
    },
  });
  if (!values.url) throw new Error('--url is required');
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const colon = h.indexOf(':');
    if (colon < 1) throw new Error(`--header "${h}": expected "name: value"`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  const gen = startLoadgen({ url: values.url, host: values.host, rps: Number(values.rps), intervalMs: parseDuration(values.interval), headers });
  await untilSignal(() => gen.stop());
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  serve,
  demo,
  'demo-backend': demoBackend,
  loadgen,
  services: (argv) => clientCommand('services', argv),
  rollout: (argv) => clientCommand('rollout', argv),
  fleet: (argv) => clientCommand('fleet', argv),
};

const run = command ? commands[command] : undefined;
if (!run) {
  process.stderr.write(USAGE);
  process.exit(command === '--help' || command === 'help' ? 0 : 2);
} else {
  run(rest).catch((err: unknown) => {
    process.stderr.write(`sluice ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
