// The key-value surface every store offers: the embedded file store, and etcd for replicas.
// Shaped after etcd so both can implement it faithfully: every key carries the revision of the
// commit that last wrote it, a commit changes several keys atomically under expectations on
// their revisions, and a watch reports what was committed.

/** A key with its value and the revision of the commit that last wrote it. */
export interface Entry<T = unknown> {
  key: string;
  value: T;
  revision: number;
}

export type StoreOp = { put: string; value: unknown } | { delete: string };

/**
 * Expected revision of each key at commit time: the revision read with it, or 0 for "must be
 * absent". Own properties only; any key may be named, including ones no op touches.
 */
export type Expectations = Record<string, number>;

/** One key changed by a commit; `value` is undefined when the key was deleted. */
export interface StoreChange {
  key: string;
  revision: number;
  value?: unknown;
}

export interface QuarantineEntry {
  key: string;
  /** The file (or etcd key) the value was read from. */
  file: string;
  /** Where it was moved; undefined when it could not be moved (e.g. a read-only disk). */
  movedTo?: string;
  reason: string;
  /** ISO 8601 time of the quarantine. */
  at: string;
}

export interface StoreHealth {
  ok: boolean;
  message?: string;
}

/** Every key under some prefixes as of one revision of the store. */
export interface Snapshot {
  /** The store's revision the entries were read at: every commit up to it is in them. */
  revision: number;
  entries: Entry[];
}

export interface WatchOptions {
  /** Report only changes with a higher revision (resume from what was read). */
  afterRevision?: number;
  /** Report only keys under these prefixes (within the watched one), skipped before parsing. */
  only?: readonly string[];
  /**
   * The watch may have missed changes (etcd: the stream was broken and re-established, or the
   * revision to resume from was compacted): re-read what it is about. Changes keep coming.
   */
  onResync?: () => void;
}

export interface Store {
  /** Every key under a prefix (`services/`), sorted by key. Values are copies. */
  entries<T>(prefix: string): Promise<Entry<T>[]>;
  /** One key, or undefined when absent. */
  read<T>(key: string): Promise<{ value: T; revision: number } | undefined>;
  /** Every key under these prefixes at one revision (a replica re-reading after a watch gap). */
  snapshot?(prefixes: readonly string[]): Promise<Snapshot>;
  /**
   * Applies every op or none. When the promise resolves the change is durable and every changed
   * key carries the returned revision (greater than any revision seen before). Rejects with
   * StoreConflictError when an expectation does not hold (nothing is written), and with
   * StoreUnavailableError when the medium cannot be written (nothing is changed, also in memory).
   */
  commit(ops: StoreOp[], expect?: Expectations): Promise<{ revision: number }>;
  /**
   * Moves a key's value aside (for values that parse but do not validate), so it is no longer
   * served. With `revision`, only if the key still has that revision (else StoreConflictError).
   */
  quarantine(key: string, reason: string, revision?: number): Promise<QuarantineEntry>;
  /** What was quarantined, oldest first (FileStore: since it was opened; EtcdStore: every record kept in etcd). */
  quarantined(): Promise<QuarantineEntry[]>;
  /** Not ok after a failed write until a later write succeeds, or while the store cannot be written. */
  health(): StoreHealth;
  /**
   * Reports every change under a prefix committed after this call (or, with `afterRevision`,
   * every change with a higher revision), by any writer, this process included, in revision
   * order. A change may repeat one the caller already read: skip it when its revision is not
   * higher than the key's known one. Returns the function that stops it.
   */
  watch(prefix: string, onChange: (change: StoreChange) => void, opts?: WatchOptions): () => void;
  /** Waits for commits in flight, then releases the store (and its lock). */
  close(): Promise<void>;
}

/** A snapshot of a store, through its own snapshot() or (a store without one) its entries. */
export async function snapshotOf(store: Store, prefixes: readonly string[]): Promise<Snapshot> {
  if (store.snapshot) return store.snapshot(prefixes);
  const entries = (await Promise.all(prefixes.map((p) => store.entries(p)))).flat();
  return { revision: entries.reduce((max, e) => Math.max(max, e.revision), 0), entries };
}

/** An expectation did not hold: another write changed the key since it was read. */
export class StoreConflictError extends Error {
  constructor(
    readonly key: string,
    /** 0 = expected absent. */
    readonly expected: number,
    /** 0 = absent. */
    readonly actual: number,
  ) {
    super(
      `store conflict on ${key}: expected ${expected === 0 ? 'absent' : `revision ${expected}`}, ` +
        `found ${actual === 0 ? 'absent' : `revision ${actual}`}`,
    );
    this.name = 'StoreConflictError';
  }
}

/** The medium cannot be written (read-only, full, no permission, I/O error, etcd down, lock lost). */
export class StoreUnavailableError extends Error {
  constructor(
    /** errno-style code: EROFS, ENOSPC, EACCES, EPERM, EIO, EDQUOT, ECOMPROMISED, EUNAVAILABLE... */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Another process (or another open in this process) holds the data directory. */
export class StoreLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder?: { pid: number; host: string },
  ) {
    super(
      `data dir ${dir} is in use by another Sluice` +
        (holder ? ` (pid ${holder.pid} on ${holder.host})` : '') +
        '; stop it or choose another --data-dir',
    );
    this.name = 'StoreLockedError';
  }
}

/** Keys are `/`-separated segments of safe characters (they become file names). */
export const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Top-level segments the stores keep for themselves. */
const RESERVED = new Set(['quarantine']);

export function checkKey(key: string): void {
  if (typeof key !== 'string' || !KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..'))
    throw new Error(`invalid store key: ${JSON.stringify(key)}`);
  if (RESERVED.has(key.split('/')[0]!)) throw new Error(`invalid store key: ${JSON.stringify(key)} (reserved prefix)`);
}

/** Validates ops and expectations up front, so a bad argument never reaches the medium. */
export function checkCommit(ops: StoreOp[], expect: Expectations | undefined): Map<string, number> {
  if (!Array.isArray(ops) || ops.length === 0) throw new Error('a commit needs at least one op');
  const seen = new Set<string>();
  for (const op of ops) {
    const key = 'put' in op ? op.put : op.delete;
    checkKey(key);
    if (seen.has(key)) throw new Error(`store key ${key} appears twice in one commit`);
    seen.add(key);
    if ('put' in op && op.value === undefined) throw new Error(`store put of ${key} has no value`);
  }
  const expected = new Map<string, number>();
  for (const [key, revision] of Object.entries(expect ?? {})) {
    checkKey(key);
    if (!Number.isSafeInteger(revision) || revision < 0)
      throw new Error(`expected revision of ${key} must be a non-negative integer, got ${String(revision)}`);
    expected.set(key, revision);
  }
  return expected;
}

/** Human text for the errno codes that mean "this medium cannot be written now". */
const MEDIUM_PROBLEMS: Record<string, string> = {
  EROFS: 'is read-only',
  ENOSPC: 'is full',
  EDQUOT: 'is over its disk quota',
  EACCES: 'is not writable by this user',
  EPERM: 'is not writable by this user',
  EIO: 'had an I/O error',
};

/** Maps a file-system error to StoreUnavailableError; other errors are returned unchanged. */
export function unavailable(dir: string, err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return err;
  const what = Object.hasOwn(MEDIUM_PROBLEMS, code) ? MEDIUM_PROBLEMS[code] : 'cannot be written';
  const uid = (code === 'EACCES' || code === 'EPERM') && process.getuid ? ` (uid ${process.getuid()})` : '';
  const at = (err as NodeJS.ErrnoException).path;
  return new StoreUnavailableError(
    code,
    `data dir ${dir} ${what}${uid} (${code}${at ? ` at ${at}` : ''})`,
    { cause: err },
  );
}
