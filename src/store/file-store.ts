// Embedded store: one plain JSON file per key under the data directory (`services/echo.json`),
// all values held in memory. Chosen over SQLite to keep the install free of native builds; a
// key is small (one service, one rollout).
//
// - One writer: the directory is locked (data-dir-lock.ts) before anything in it is changed,
//   including the clean-up of temporary files a crashed writer left.
// - Durable and atomic: a key is replaced by tmp + fsync + rename + directory fsync; a commit
//   of several keys goes through an undo journal (journal.ts), so it lands whole or not at all.
// - Never refuses to start over bad data: an unreadable, empty or non-JSON file is moved under
//   `quarantine/` and reported; a read-only or unwritable directory is served read-only and
//   every commit retries taking the lock and writing, so the store heals when the disk does.
// - Revisions are numbered from a counter at open (one writer, so no cross-process numbering).
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { Logger } from 'pino';
import { DataDirLock } from './data-dir-lock.js';
import { makeDir, replaceFile, syncDir, syncDirs, TMP_MARKER } from './durable-fs.js';
import type { Journal } from './journal.js';
import { JOURNAL_DIR, JOURNAL_FORMAT, journalFiles, newJournalFile, parseJournal, removeJournal, rollBack, writeJournal } from './journal.js';
import { KeyLocks } from './key-locks.js';
import type { Entry, Expectations, QuarantineEntry, Snapshot, Store, StoreChange, StoreHealth, StoreOp, WatchOptions } from './store.js';
import { checkCommit, checkKey, StoreConflictError, StoreLockedError, StoreUnavailableError, unavailable } from './store.js';

export interface FileStoreOptions {
  log?: Logger;
  /** A crashed holder's lock is taken over this long after its last refresh (default 5 s, min 2 s). */
  lockStaleMs?: number;
  /** Called when the lock is lost while running (taken over or removed): every write fails from then on. */
  onLockLost?: (err: Error) => void;
}

const QUARANTINE_DIR = 'quarantine';

interface Held {
  value: unknown;
  revision: number;
}

/** A journal whose roll-back has not been done yet; memory already holds its previous values. */
interface PendingJournal {
  file: string;
  journal: Journal;
}

interface Watcher {
  prefix: string;
  onChange: (change: StoreChange) => void;
}

export class FileStore implements Store {
  private readonly values = new Map<string, Held>();
  private revision = 0;
  private readonly keyLocks = new KeyLocks();
  private readonly quarantineLog: QuarantineEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly pending: PendingJournal[] = [];
  private readonly log: Logger;
  private lock?: DataDirLock;
  /** Why the directory is not locked (it could not be written at open). */
  private lockProblem?: StoreUnavailableError;
  private lockLost?: StoreUnavailableError;
  private lastWriteError?: StoreUnavailableError;
  private becomingWritable?: Promise<void>;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly opts: FileStoreOptions,
  ) {
    this.log = (opts.log ?? pino({ level: 'silent' })).child({ component: 'store', dataDir: dir });
  }

  /**
   * Opens (creating if needed) and locks a data directory. Throws StoreLockedError when another
   * live process holds it; serves it read-only (health() not ok) when it cannot be written.
   */
  static async open(dir: string, opts: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(path.resolve(dir), opts);
    await store.start();
    return store;
  }

  // ---- reads -----------------------------------------------------------------------------

  async entries<T>(prefix: string): Promise<Entry<T>[]> {
    return [...this.values.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, held]) => ({ key, value: structuredClone(held.value) as T, revision: held.revision }));
  }

  async read<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    checkKey(key);
    const held = this.values.get(key);
    return held && { value: structuredClone(held.value) as T, revision: held.revision };
  }

  async quarantined(): Promise<QuarantineEntry[]> {
    return structuredClone(this.quarantineLog);
  }

  health(): StoreHealth {
    if (this.closed) return { ok: false, message: 'store is closed' };
    const problem = this.lockLost ?? this.lockProblem ?? this.lastWriteError;
    if (problem) return { ok: false, message: problem.message };
    if (this.pending.length > 0)
      return { ok: false, message: `data dir ${this.dir}: ${this.pending.length} interrupted commit(s) not rolled back yet` };
    return { ok: true };
  }

  async snapshot(prefixes: readonly string[]): Promise<Snapshot> {
    const entries = (await Promise.all(prefixes.map((p) => this.entries(p)))).flat();
    return { revision: this.revision, entries };
  }

  /** Every commit of this store (the only writer) is reported, after it is durable. Never has
   *  gaps: onResync is never called. */
  watch(prefix: string, onChange: (change: StoreChange) => void, opts: WatchOptions = {}): () => void {
    const after = opts.afterRevision ?? 0;
    const only = opts.only;
    const watcher = {
      prefix,
      onChange: (change: StoreChange) =>
        change.revision > after && (!only || only.some((p) => change.key.startsWith(prefix + p))) && onChange(change),
    };
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  // ---- writes ----------------------------------------------------------------------------

  async commit(ops: StoreOp[], expect?: Expectations): Promise<{ revision: number }> {
    this.assertOpen();
    const expected = checkCommit(ops, expect);
    const texts = ops.map((op) => {
      if (!('put' in op)) return undefined;
      const text = JSON.stringify(op.value, null, 1) as string | undefined;
      if (text === undefined) throw new Error(`store value of ${op.put} is not JSON`);
      return text;
    });
    const keys = ops.map(keyOf);
    return this.keyLocks.run([...keys, ...expected.keys()], async () => {
      for (const [key, revision] of expected) {
        const actual = this.values.get(key)?.revision ?? 0;
        if (actual !== revision) throw new StoreConflictError(key, revision, actual);
      }
      try {
        await this.ensureWritable();
        if (ops.length === 1) await this.writeOne(keys[0]!, texts[0]);
        else await this.writeMany(keys, texts);
      } catch (err) {
        throw this.writeFailed(err, 'commit failed; nothing was changed');
      }
      this.lastWriteError = undefined;
      const revision = ++this.revision;
      const changes: StoreChange[] = [];
      keys.forEach((key, i) => {
        const text = texts[i];
        if (text !== undefined) {
          const value = JSON.parse(text) as unknown;
          this.values.set(key, { value, revision });
          changes.push({ key, revision, value });
        } else if (this.values.delete(key)) changes.push({ key, revision });
      });
      this.emit(changes);
      return { revision };
    });
  }

  async quarantine(key: string, reason: string, revision?: number): Promise<QuarantineEntry> {
    this.assertOpen();
    checkKey(key);
    return this.keyLocks.run([key], async () => {
      const held = this.values.get(key);
      if (revision !== undefined && (held?.revision ?? 0) !== revision)
        throw new StoreConflictError(key, revision, held?.revision ?? 0);
      if (!held) throw new Error(`cannot quarantine ${key}: no such key`);
      const file = this.fileOf(key);
      let movedTo: string | undefined;
      try {
        await this.ensureWritable();
        movedTo = await this.moveAside(key, file);
      } catch (err) {
        this.writeFailed(err, 'could not move a quarantined value aside; it is no longer served');
      }
      this.values.delete(key);
      const entry = this.recordQuarantine(key, file, movedTo, reason);
      this.emit([{ key, revision: ++this.revision }]);
      return structuredClone(entry);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.keyLocks.idle();
    await this.becomingWritable?.catch(() => undefined);
    this.watchers.clear();
    await this.lock?.release();
    this.lock = undefined;
  }

  // ---- start-up ----------------------------------------------------------------------------

  private async start(): Promise<void> {
    try {
      await fs.mkdir(this.dir, { recursive: true });
      this.lock = await DataDirLock.acquire(this.dir, { staleMs: this.opts.lockStaleMs, onLost: (err) => this.onLockLost(err) });
    } catch (err) {
      if (err instanceof StoreLockedError) throw err;
      const mapped = unavailable(this.dir, err);
      if (!(mapped instanceof StoreUnavailableError)) throw err;
      this.lockProblem = mapped;
      this.log.error({ code: mapped.code }, `${mapped.message}: serving the stored configuration read-only; writes are retried`);
    }
    if (this.lock) await this.removeTmpFiles(this.dir);
    await this.recoverJournals();
    await this.load(this.dir, '');
    for (const { journal } of this.pending) this.applyInMemory(journal);
    for (const key of [...this.values.keys()].sort()) this.values.get(key)!.revision = ++this.revision;
    this.log.info({ keys: this.values.size, quarantined: this.quarantineLog.length }, 'store opened');
  }

  /** Rolls back commits a crash interrupted (see journal.ts); without the lock, only in memory. */
  private async recoverJournals(): Promise<void> {
    let files: string[];
    try {
      files = await journalFiles(this.dir);
    } catch (err) {
      this.log.error({ err }, 'cannot read the journal directory; interrupted commits (if any) are not rolled back');
      return;
    }
    for (const file of files) {
      let journal: Journal;
      try {
        journal = parseJournal(await fs.readFile(file, 'utf8'));
      } catch (err) {
        const rel = `${JOURNAL_DIR}/${path.basename(file, '.json')}`;
        const reason = `unusable commit journal (${describe(err)}); the keys it names may hold a partly applied commit`;
        const movedTo = this.lock ? await this.moveAside(rel, file).catch(() => undefined) : undefined;
        this.recordQuarantine(rel, file, movedTo, reason);
        continue;
      }
      const keys = journal.keys.map((k) => k.key);
      if (this.lock) {
        try {
          await rollBack(journal, file, (key) => this.fileOf(key));
          this.log.warn({ journal: file, keys }, 'rolled back a commit interrupted by a crash');
          continue;
        } catch (err) {
          this.log.error({ journal: file, keys, err: describe(err) }, 'cannot roll back an interrupted commit yet; serving its previous values');
        }
      }
      this.pending.push({ file, journal });
    }
  }

  private async load(dir: string, prefix: string): Promise<void> {
    let dirents;
    try {
      dirents = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      this.log.error({ dir, err: describe(err) }, 'cannot read a store directory; its keys are not served');
      return;
    }
    for (const entry of dirents) {
      const name = entry.name;
      const full = path.join(dir, name);
      if (name.startsWith('.') || (prefix === '' && name === QUARANTINE_DIR) || name.includes(TMP_MARKER)) continue;
      if (entry.isDirectory()) {
        if (isKey(prefix + name)) await this.load(full, `${prefix}${name}/`);
        else this.log.warn({ dir: full }, 'ignoring a directory whose name is not a store key segment');
        continue;
      }
      if (!entry.isFile() || !name.endsWith('.json')) continue;
      const key = prefix + name.slice(0, -'.json'.length);
      if (!isKey(key)) {
        this.log.warn({ file: full }, 'ignoring a file whose name is not a store key');
        continue;
      }
      let value: unknown;
      try {
        const text = await fs.readFile(full, 'utf8');
        if (text.trim() === '') throw new Error('empty file');
        value = JSON.parse(text);
      } catch (err) {
        const reason = err instanceof SyntaxError ? `not valid JSON: ${err.message}` : `unreadable: ${describe(err)}`;
        const movedTo = this.lock ? await this.moveAside(key, full).catch(() => undefined) : undefined;
        this.recordQuarantine(key, full, movedTo, reason);
        continue;
      }
      this.values.set(key, { value, revision: 0 });
    }
  }

  private applyInMemory(journal: Journal): void {
    for (const entry of journal.keys) {
      if (entry.existed) this.values.set(entry.key, { value: entry.prev, revision: 0 });
      else this.values.delete(entry.key);
    }
  }

  /** Temporary files of interrupted writes; only ever called while holding the lock. */
  private async removeTmpFiles(dir: string): Promise<void> {
    let dirents;
    try {
      dirents = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return; // unreadable directories are reported by load()
    }
    for (const entry of dirents) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== '.lock' && !(dir === this.dir && entry.name === QUARANTINE_DIR))
        await this.removeTmpFiles(full);
      else if (entry.isFile() && entry.name.includes(TMP_MARKER))
        await fs.rm(full, { force: true }).catch((err) => this.log.warn({ file: full, err: describe(err) }, 'cannot remove a temporary file'));
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Takes the lock if open could not, and finishes roll-backs that failed before. */
  private async ensureWritable(): Promise<void> {
    if (this.lockLost) throw this.lockLost;
    if (this.lock && this.pending.length === 0) return;
    this.becomingWritable ??= this.becomeWritable().finally(() => (this.becomingWritable = undefined));
    await this.becomingWritable;
  }

  private async becomeWritable(): Promise<void> {
    if (!this.lock) {
      try {
        await fs.mkdir(this.dir, { recursive: true });
        this.lock = await DataDirLock.acquire(this.dir, { staleMs: this.opts.lockStaleMs, wait: false, onLost: (err) => this.onLockLost(err) });
      } catch (err) {
        if (err instanceof StoreLockedError) throw new StoreUnavailableError('ELOCKED', err.message, { cause: err });
        throw err;
      }
      this.lockProblem = undefined;
      this.log.info('data dir is writable again; lock taken');
      await this.removeTmpFiles(this.dir);
    }
    while (this.pending.length > 0) {
      const { file, journal } = this.pending[0]!;
      await rollBack(journal, file, (key) => this.fileOf(key));
      this.pending.shift();
      this.log.info({ journal: file }, 'rolled back an interrupted commit');
    }
  }

  /** One key needs no journal: the rename is atomic. */
  private async writeOne(key: string, text: string | undefined): Promise<void> {
    const file = this.fileOf(key);
    const dir = path.dirname(file);
    if (text !== undefined) {
      const created = await makeDir(dir);
      await replaceFile(file, text);
      await syncDirs([...created, dir]).catch((err) => this.restore(key, err));
    } else {
      await fs.rm(file, { force: true });
      await syncDir(dir).catch((err) => this.restore(key, err));
    }
  }

  /** After a failure that may have left the new value on disk: put the held value back, then rethrow. */
  private async restore(key: string, err: unknown): Promise<never> {
    const file = this.fileOf(key);
    const held = this.values.get(key);
    try {
      if (held) await replaceFile(file, JSON.stringify(held.value, null, 1));
      else await fs.rm(file, { force: true });
      await syncDir(path.dirname(file));
    } catch (restoreErr) {
      this.log.error({ key, err: describe(restoreErr) }, 'cannot restore a key after a failed write; the file may hold the unconfirmed value');
    }
    throw err;
  }

  /** Several keys: undo journal first, so a failure or crash at any point rolls back (journal.ts). */
  private async writeMany(keys: string[], texts: (string | undefined)[]): Promise<void> {
    const journal: Journal = {
      format: JOURNAL_FORMAT,
      keys: keys.map((key) => {
        const held = this.values.get(key);
        return held ? { key, existed: true as const, prev: held.value } : { key, existed: false as const };
      }),
    };
    const journalFile = newJournalFile(this.dir);
    try {
      await writeJournal(journalFile, journal);
    } catch (err) {
      // No key was touched; the journal exists only if its directory fsync failed.
      await removeJournal(journalFile).catch(() => this.pending.push({ file: journalFile, journal }));
      throw err;
    }
    try {
      const dirs: string[] = [];
      for (const [i, key] of keys.entries()) {
        const file = this.fileOf(key);
        const text = texts[i];
        if (text !== undefined) {
          dirs.push(...(await makeDir(path.dirname(file))));
          await replaceFile(file, text);
        } else await fs.rm(file, { force: true });
        dirs.push(path.dirname(file));
      }
      await syncDirs(dirs);
      await removeJournal(journalFile);
    } catch (err) {
      try {
        await rollBack(journal, journalFile, (key) => this.fileOf(key));
        this.log.warn({ keys, err: describe(err) }, 'a commit failed while writing its keys; rolled back');
      } catch (undoErr) {
        this.pending.push({ file: journalFile, journal });
        this.log.error({ journal: journalFile, err: describe(undoErr) }, 'cannot roll back a failed commit yet; retried before the next write and at open');
      }
      throw err;
    }
  }

  /** Moves a file under quarantine/ (same relative path, timestamped); returns where. */
  private async moveAside(rel: string, file: string): Promise<string> {
    const stamp = new Date().toISOString().replaceAll(':', '-');
    const base = path.join(this.dir, QUARANTINE_DIR, ...rel.split('/'));
    let target = `${base}.${stamp}.json`;
    for (let n = 2; await exists(target); n++) target = `${base}.${stamp}-${n}.json`;
    const created = await makeDir(path.dirname(target));
    await fs.rename(file, target);
    await syncDirs([...created, path.dirname(target), path.dirname(file)]);
    return target;
  }

  private recordQuarantine(key: string, file: string, movedTo: string | undefined, reason: string): QuarantineEntry {
    const entry: QuarantineEntry = { key, file, movedTo, reason, at: new Date().toISOString() };
    this.quarantineLog.push(entry);
    this.log.error(
      { key, file, movedTo, reason },
      movedTo ? `quarantined ${file}: ${reason}` : `quarantined ${file} (left in place, it could not be moved): ${reason}`,
    );
    return entry;
  }

  /** Maps a write failure, marks the store unhealthy when the medium is at fault, logs it. */
  private writeFailed(err: unknown, what: string): unknown {
    const mapped = unavailable(this.dir, err);
    if (mapped instanceof StoreUnavailableError) {
      this.lastWriteError = mapped;
      this.log.error({ code: mapped.code }, `${mapped.message}: ${what}`);
    }
    return mapped;
  }

  private onLockLost(err: Error): void {
    this.lock = undefined;
    this.lockLost = new StoreUnavailableError(
      'ECOMPROMISED',
      `lost the lock on data dir ${this.dir} (${err.message}); another process may be writing it, so this one no longer does`,
      { cause: err },
    );
    this.log.error(this.lockLost.message);
    this.opts.onLockLost?.(err);
  }

  private emit(changes: StoreChange[]): void {
    for (const change of changes)
      for (const watcher of this.watchers)
        if (change.key.startsWith(watcher.prefix)) {
          try {
            watcher.onChange(structuredClone(change));
          } catch (err) {
            this.log.error({ key: change.key, err: describe(err) }, 'a store watcher threw');
          }
        }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`store ${this.dir} is closed`);
  }

  private fileOf(key: string): string {
    return path.join(this.dir, ...key.split('/')) + '.json';
  }
}

function keyOf(op: StoreOp): string {
  return 'put' in op ? op.put : op.delete;
}

function isKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
