// Embedded store: one JSON file per key under the data directory. Each write goes to a
// temporary file that is fsynced and renamed over the old one, then the directory is fsynced:
// after a crash every key holds either its old or its new value, never a torn one.
// Chosen over SQLite to keep the install free of native builds; writes are per key, and a
// key is small (one service, one rollout).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { QuarantinedEntry, Store, StoreOp } from './store.js';
import { checkKey } from './store.js';

export class FileStore implements Store {
  private readonly values = new Map<string, unknown>();
  /** Writes to one key are applied in order. */
  private readonly queues = new Map<string, Promise<void>>();
  private tmpCounter = 0;

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<FileStore> {
    const store = new FileStore(path.resolve(dir));
    await fs.mkdir(store.dir, { recursive: true });
    await store.load(store.dir, '');
    return store;
  }

  private async load(dir: string, prefix: string): Promise<void> {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await this.load(full, `${prefix}${entry.name}/`);
      else if (entry.name.endsWith('.json')) {
        const key = prefix + entry.name.slice(0, -'.json'.length);
        this.values.set(key, JSON.parse(await fs.readFile(full, 'utf8')));
      } else if (entry.name.includes('.tmp-')) await fs.rm(full, { force: true }); // an interrupted write
    }
  }

  private readonly moved: QuarantinedEntry[] = [];

  async commit(ops: readonly StoreOp[]): Promise<void> {
    for (const op of ops) await ('put' in op ? this.put(op.put, op.value) : this.delete(op.delete));
  }

  async quarantine(key: string, reason: string): Promise<void> {
    const movedTo = path.join(this.dir, 'quarantine', `${key}.${Date.now()}.json`);
    await fs.mkdir(path.dirname(movedTo), { recursive: true });
    await fs.rename(this.fileOf(key), movedTo);
    this.values.delete(key);
    this.moved.push({ key, movedTo, reason, at: new Date().toISOString() });
  }

  quarantined(): QuarantinedEntry[] {
    return [...this.moved];
  }

  health(): { ok: boolean; message?: string } {
    return { ok: true };
  }

  async get<T>(key: string): Promise<T | undefined> {
    return structuredClone(this.values.get(key)) as T | undefined;
  }

  async list<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    return [...this.values.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => ({ key, value: structuredClone(value) as T }));
  }

  put(key: string, value: unknown): Promise<void> {
    checkKey(key);
    const text = JSON.stringify(value, null, 1);
    return this.enqueue(key, async () => {
      const file = this.fileOf(key);
      const dir = path.dirname(file);
      await fs.mkdir(dir, { recursive: true });
      const tmp = `${file}.tmp-${process.pid}-${++this.tmpCounter}`;
      const handle = await fs.open(tmp, 'w');
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, file);
      await syncDir(dir);
      this.values.set(key, JSON.parse(text));
    });
  }

  delete(key: string): Promise<void> {
    checkKey(key);
    return this.enqueue(key, async () => {
      const file = this.fileOf(key);
      await fs.rm(file, { force: true });
      await syncDir(path.dirname(file));
      this.values.delete(key);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.values());
  }

  private fileOf(key: string): string {
    return path.join(this.dir, ...key.split('/')) + '.json';
  }

  private enqueue(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev.then(job, job);
    const tail = next.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return next;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
