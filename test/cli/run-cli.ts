// Runs the real CLI as a child process (from source, through tsx) and collects what it did.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve('src/cli/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The test's environment with overrides; `undefined` removes a variable. No colours. */
function cleanEnv(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** `sluice ...args`; never throws on a non-zero exit (the code is the point of many tests). */
export function sluiceCli(args: string[], opts: { env?: Record<string, string | undefined>; input?: string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = cleanEnv({ SLUICE_SERVER: undefined, SLUICE_API_TOKEN: undefined, ...opts.env });
    const child = execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { env, cwd: opts.cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

type Collected = ChildProcessWithoutNullStreams & { output: () => string; errors: () => string };

function collect(child: ChildProcessWithoutNullStreams): Collected {
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return Object.assign(child, { output: () => out, errors: () => err });
}

/** A long-running CLI process (serve, --watch) with its output collected as it comes. */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): Collected {
  return collect(spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: cleanEnv(env) }));
}

/** `node bin/sluice.js ...`: the built CLI, exactly as the Dockerfile starts it. */
export function spawnBin(args: string[]): Collected {
  return collect(spawn(process.execPath, [path.resolve('bin/sluice.js'), ...args], { env: cleanEnv({}) }));
}

export function exitOf(child: { once(event: 'exit', f: (code: number | null, signal: NodeJS.Signals | null) => void): unknown }): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}
