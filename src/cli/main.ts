// `sluice <command>`: the control plane and its demo (server-commands.ts), and the REST API
// from the shell (client-commands.ts). Exit codes: exit-codes.ts, docs/cli.md.
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addClientOptions, registerClientCommands } from './client-commands.js';
import { ApplyConflictError, ManifestError, NotAcknowledgedError, UsageError } from './errors.js';
import { EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { ServerError, UnreachableError } from './http.js';
import { registerServerCommands } from './server-commands.js';

/** package.json's version, found by walking up from this file (src/cli or dist/src/cli). */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sluice' && pkg.version) return pkg.version;
    } catch {
      /* not here: one level up */
    }
  }
  return 'unknown';
}

function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Sluice: an xDS control plane for canary releases, and its command line')
    .version(packageVersion(), '-V, --version', 'print the version')
    // Options after a command belong to it: `demo-backend --version v1` is its own flag.
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Client commands talk to --server (default $SLUICE_SERVER or http://127.0.0.1:8080) with
--token (default $SLUICE_API_TOKEN); -o json|yaml prints the server's objects for scripts.
Getting started: docs/cli.md.
${EXIT_CODES_HELP}`,
    );
  addClientOptions(program);
  registerServerCommands(program);
  registerClientCommands(program);
  return program;
}

function fail(code: number, message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

function report(err: unknown): never {
  if (err instanceof ServerError) {
    let message = `${err.status} ${err.code}: ${err.message}`;
    if (err.details.length > 1) message += '\n' + err.details.map((d) => `  ${d.field ?? '(body)'}: ${d.message ?? ''}`).join('\n');
    if (err.status === 401) message += '\n  (pass the API token with --token or SLUICE_API_TOKEN)';
    fail(EXIT.server, message);
  }
  if (err instanceof UnreachableError) fail(EXIT.unreachable, err.message);
  if (err instanceof NotAcknowledgedError) fail(EXIT.notAcknowledged, err.message);
  if (err instanceof ApplyConflictError) fail(EXIT.server, err.message);
  if (err instanceof UsageError || err instanceof ManifestError) fail(EXIT.usage, err.message);
  if (err instanceof CommanderError) process.exit(err.exitCode);
  fail(EXIT.usage, err instanceof Error ? err.message : String(err));
}

// `sluice ... | head`: the reader went away; stop quietly, as other command-line tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

buildProgram()
  .parseAsync(process.argv)
  .catch(report);
