// Parent side of a proxyless gRPC client process (see xds-client-process.ts).
import { fork, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CallRequest, CallResult } from './xds-client-process.js';

export type { CallResult };

export interface XdsClientOptions {
  nodeId: string;
  xdsPort: number;
  cluster?: string;
  /** Extra environment (GRPC_TRACE, ...). */
  env?: Record<string, string>;
}

export interface XdsClient {
  nodeId: string;
  call(target: string, count: number, opts?: { metadata?: Record<string, string>; deadlineMs?: number }): Promise<CallResult>;
  stop(): Promise<void>;
}

export function bootstrapFor(nodeId: string, xdsPort: number, cluster = 'sluice-demo'): string {
  return JSON.stringify({
    xds_servers: [
      { server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node: { id: nodeId, cluster, locality: { zone: 'local' } },
  });
}

/** Runs the .ts worker through tsx when Sluice itself runs from source (tests), else the .js. */
function workerPath(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return { file: self.replace(/xds-client\.ts$/, 'xds-client-process.ts'), execArgv: ['--import', 'tsx'] };
  return { file: self.replace(/xds-client\.js$/, 'xds-client-process.js'), execArgv: [] };
}

export async function spawnXdsClient(opts: XdsClientOptions): Promise<XdsClient> {
  const { file, execArgv } = workerPath();
  const child: ChildProcess = fork(file, [], {
    execArgv,
    env: {
      ...process.env,
      GRPC_XDS_BOOTSTRAP_CONFIG: bootstrapFor(opts.nodeId, opts.xdsPort, opts.cluster),
      GRPC_XDS_BOOTSTRAP: '',
      ...opts.env,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const pending = new Map<number, (r: CallResult) => void>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`xds client ${opts.nodeId} exited (${code}) before it was ready`)));
    child.once('message', () => resolve());
  });
  child.on('message', (msg: CallResult) => {
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  });
  return {
    nodeId: opts.nodeId,
    call(target, count, callOpts = {}) {
      const req: CallRequest = { id: nextId++, op: 'call', target, count, ...callOpts };
      return new Promise((resolve, reject) => {
        pending.set(req.id, resolve);
        child.send(req, (err) => err && reject(err));
      });
    },
    async stop() {
      if (child.exitCode === null) {
        child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The same client on gRPC C-core: Debian's python3-grpcio, run with /usr/bin/python3. */
export const PYTHON = '/usr/bin/python3';

export async function spawnPythonXdsClient(opts: XdsClientOptions): Promise<XdsClient> {
  // The script is not compiled: from dist/src/demo/ it lives in src/demo/ of the checkout.
  const here = fileURLToPath(new URL('.', import.meta.url));
  const script = here.replace(/\/dist\/src\/demo\/$/, '/src/demo/') + 'py_xds_client.py';
  const child = spawn(PYTHON, [script], {
    env: {
      ...process.env,
      GRPC_XDS_BOOTSTRAP_CONFIG: bootstrapFor(opts.nodeId, opts.xdsPort, opts.cluster),
      ...opts.env,
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let nextId = 1;
  const pending = new Map<number, (r: CallResult) => void>();
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python xds client ${opts.nodeId} exited (${code}) before it was ready`)));
    lines.once('line', () => resolve());
  });
  lines.on('line', (line) => {
    const msg = JSON.parse(line) as CallResult;
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  });
  return {
    nodeId: opts.nodeId,
    call(target, count, callOpts = {}) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        child.stdin!.write(JSON.stringify({ id, target, count, ...callOpts }) + '\n');
      });
    },
    async stop() {
      if (child.exitCode === null) {
        child.stdin!.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
