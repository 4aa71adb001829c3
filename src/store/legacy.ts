// The v1 store surface (get/list/put/delete) on top of v2, for callers not migrated yet.
// Delete this file and its `extends` once every caller uses read/entries/commit.
import type { Entry, StoreOp } from './store.js';

export abstract class LegacyStoreMethods {
  abstract read<T>(key: string): Promise<{ value: T; revision: number } | undefined>;
  abstract entries<T>(prefix: string): Promise<Entry<T>[]>;
  abstract commit(ops: StoreOp[]): Promise<{ revision: number }>;

  /** @deprecated use read(). */
  async get<T>(key: string): Promise<T | undefined> {
    return (await this.read<T>(key))?.value;
  }

  /** @deprecated use entries(). */
  async list<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    return (await this.entries<T>(prefix)).map(({ key, value }) => ({ key, value }));
  }

  /** @deprecated use commit([{ put: key, value }]). */
  async put(key: string, value: unknown): Promise<void> {
    await this.commit([{ put: key, value }]);
  }

  /** @deprecated use commit([{ delete: key }]). */
  async delete(key: string): Promise<void> {
    await this.commit([{ delete: key }]);
  }
}
