// `sluice <command>`: serve (the control plane), demo, demo-backend.
import { parseConfig, FLAG_NAMES } from '../config.js';
import { startSluice } from '../main.js';
import { runDemo } from '../demo/demo.js';
import { CLIENT_USAGE, clientCommand } from './client.js';
import { parseArgs } from 'node:util';

const USAGE = `usage: sluice <command> [options]

commands:
  serve         run the control plane (xDS on --xds-port, REST on --http-port)
  demo          a whole rollout and rollback on this machine, with real gRPC clients
                (--clients N, --keep-running, --xds-port, --http-port; ports default to free ones)

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

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  serve,
  demo,
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
