// Request/response over the Node IPC channel between the orchestrator and its children
// (server under test, floor server, load generators). Messages use structured cloning.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

interface CallMsg {
  id: number;
  cmd: string;
  args: unknown;
}
interface ReplyMsg {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}
interface EventMsg {
  event: string;
  data: unknown;
}

export type Handlers = Record<string, (args: any) => unknown>;

/** In a child: answers the parent's calls with the handlers. */
export function serveIpc(handlers: Handlers): void {
  process.on('message', (raw) => {
    const msg = raw as CallMsg;
    if (typeof msg?.id !== 'number') return;
    const reply = (r: ReplyMsg) => process.send?.(r);
    const h = handlers[msg.cmd];
    if (!h) return reply({ id: msg.id, ok: false, error: `unknown command ${msg.cmd}` });
    Promise.resolve()
      .then(() => h(msg.args))
      .then(
        (result) => reply({ id: msg.id, ok: true, result }),
        (err: unknown) => reply({ id: msg.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      );
  });
  // The parent going away ends the child.
  process.on('disconnect', () => process.exit(0));
}

export function emitEvent(event: string, data: unknown): void {
  process.send?.({ event, data } satisfies EventMsg);
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** A child process running one of the bench scripts, called by command name. */
export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, ((data: any) => void)[]>();
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.on('message', (raw) => {
      const m = raw as ReplyMsg & EventMsg;
      if (typeof m.id === 'number') {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(`${name}: ${m.error}`));
      } else if (m.event) for (const l of this.listeners.get(m.event) ?? []) l(m.data);
    });
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code})`));
        this.pending.clear();
        resolve(code);
      }),
    );
  }

  static start(name: string, script: string, args: string[] = [], execArgv: string[] = []): Child {
    const proc = fork(path.join(here, script), args, {
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    return new Child(name, proc);
  }

  call<T = any>(cmd: string, args?: unknown, timeoutMs = 600_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.proc.send({ id, cmd, args } satisfies CallMsg);
    });
  }

  on(event: string, fn: (data: any) => void): void {
    const list = this.listeners.get(event) ?? [];
    list.push(fn);
    this.listeners.set(event, list);
  }

  /** Asks politely (so --cpu-prof gets written), then kills. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.call('exit', undefined, graceMs).catch(() => undefined);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** Milliseconds on the system-wide monotonic clock, comparable between processes. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
