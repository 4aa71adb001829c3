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

/**
 * Drives one client process: sends call requests, matches answers by id, waits for it to be
 * ready, and fails calls in flight when it dies (a Ctrl-C reaches the whole process group).
 */
function driveClient(
  nodeId: string,
  child: ChildProcess,
  send: (req: CallRequest) => void,
  onAnswer: (listener: (msg: unknown) => void) => void,
  close: () => void,
): Promise<XdsClient> {
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: CallResult) => void; reject: (e: Error) => void }>();
  let ready: (() => void) | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      const err = new Error(`xds client ${nodeId} exited (${signal ?? code})`);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      resolve();
    }),
  );
  onAnswer((msg) => {
    const id = (msg as { id?: number }).id;
    if (id === undefined) return ready?.();
    pending.get(id)?.resolve(msg as CallResult);
    pending.delete(id);
  });
  const client: XdsClient = {
    nodeId,
    call(target, count, callOpts = {}) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`xds client ${nodeId} is not running`));
      const req: CallRequest = { id: nextId++, op: 'call', target, count, ...callOpts };
      return new Promise((resolve, reject) => {
        pending.set(req.id, { resolve, reject });
        send(req);
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        close();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  return new Promise((resolve, reject) => {
    ready = () => resolve(client);
    child.once('error', reject);
    void exited.then(() => reject(new Error(`xds client ${nodeId} exited before it was ready`)));
  });
}

export function spawnXdsClient(opts: XdsClientOptions): Promise<XdsClient> {
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
  return driveClient(
    opts.nodeId,
    child,
    (req) => child.send(req),
    (listener) => child.on('message', listener),
    () => child.disconnect(),
  );
}

/** The same client on gRPC C-core: Debian's python3-grpcio, run with /usr/bin/python3. */
export const PYTHON = '/usr/bin/python3';

export function spawnPythonXdsClient(opts: XdsClientOptions): Promise<XdsClient> {
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
  return driveClient(
    opts.nodeId,
    child,
    (req) => child.stdin!.write(JSON.stringify(req) + '\n'),
    (listener) => lines.on('line', (line) => listener(JSON.parse(line))),
    () => child.stdin!.end(),
  );
}
