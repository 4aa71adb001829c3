import type { Expectations, Store, StoreChange, StoreOp, WatchOptions } from '../../src/store/store.js';
import { snapshotOf } from '../../src/store/store.js';

/** A store that hands every call to a real one; a test overrides what it changes (a gate, a partition). */
export class StoreProxy implements Store {
  constructor(protected readonly inner: Store) {}
  entries<T>(prefix: string) {
    return this.inner.entries<T>(prefix);
  }
  read<T>(key: string) {
    return this.inner.read<T>(key);
  }
  snapshot(prefixes: readonly string[]) {
    return snapshotOf(this.inner, prefixes);
  }
  commit(ops: StoreOp[], expect?: Expectations) {
    return this.inner.commit(ops, expect);
  }
  quarantine(key: string, reason: string, revision?: number) {
    return this.inner.quarantine(key, reason, revision);
  }
  quarantined() {
    return this.inner.quarantined();
  }
  health() {
    return this.inner.health();
  }
  watch(prefix: string, onChange: (c: StoreChange) => void, opts?: WatchOptions) {
    return this.inner.watch(prefix, onChange, opts);
  }
  close() {
    return this.inner.close();
  }
}
