// Runs Sluice as a real child process (`sluice serve`), so tests can kill -9 it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface SluiceProcess {
  child: ChildProcess;
  /** What the server logged, when started with captureLogs. */
  logs(): string;
  httpPort: number;
  xdsPort: number;
  api<T = any>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A free loopback port (the server restarts on the same ports, so they are fixed up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The unprivileged user tests run a server as, where root would write through any permission. */
export const NOBODY = { uid: 65534, gid: 65534 };

export async function spawnSluice(opts: {
  dataDir: string;
  httpPort: number;
  xdsPort: number;
  extra?: string[];
  /** Run as this user (e.g. NOBODY) instead of the test's own. */
  user?: { uid: number; gid: number };
  /** Keep stderr (logs) in memory instead of passing it through. */
  captureLogs?: boolean;
  /** How long it may take to become ready (default 20 s). */
  readyTimeoutMs?: number;
}): Promise<SluiceProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve',
      '--http-port', String(opts.httpPort), '--xds-port', String(opts.xdsPort), '--data-dir', opts.dataDir,
      '--log-level', 'warn', ...(opts.extra ?? [])],
    { cwd: ROOT, stdio: ['ignore', opts.captureLogs ? 'pipe' : 'ignore', opts.captureLogs ? 'pipe' : 'inherit'], ...(opts.user ?? {}) },
  );
  // Logs (pino, stdout) and errors (stderr), the last 200 kB.
  let logs = '';
  const keep = (chunk: Buffer) => {
    logs = (logs + chunk.toString()).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const api = async (method: string, urlPath: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${opts.httpPort}${urlPath}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sluice exited with ${child.exitCode} while starting${logs ? `: ${logs.slice(-2000)}` : ''}`);
    try {
      if ((await api('GET', '/readyz')).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('sluice did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    logs: () => logs,
    httpPort: opts.httpPort,
    xdsPort: opts.xdsPort,
    api,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
