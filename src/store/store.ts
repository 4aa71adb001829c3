// The key-value surface every store offers: the embedded file store, and etcd for replicas.
export type StoreOp = { put: string; value: unknown } | { delete: string };

export interface QuarantinedEntry {
  key: string;
  movedTo: string;
  reason: string;
  at: string;
}

export interface Store {
  /** Applies every op, atomically and durably (TEMPORARY sequential version until the store rework lands). */
  commit(ops: readonly StoreOp[]): Promise<void>;
  /** Moves a value that cannot be used out of the way, keeping it for a human. */
  quarantine(key: string, reason: string): Promise<void>;
  quarantined(): QuarantinedEntry[];
  health(): { ok: boolean; message?: string };
  /** Reads one value, or undefined. */
  get<T>(key: string): Promise<T | undefined>;
  /** Every key under a prefix (`services/`), sorted by key. */
  list<T>(prefix: string): Promise<{ key: string; value: T }[]>;
  /** Durably writes a value: when the promise resolves, a crash cannot lose it. */
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

/** Keys are `/`-separated segments of safe characters (they become file names). */
export const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

export function checkKey(key: string): void {
  if (!KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..'))
    throw new Error(`invalid store key: ${JSON.stringify(key)}`);
}
