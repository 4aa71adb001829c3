// Replicas see each other through etcd: each writes its summary (summary.ts) to
// `replicas/<id>` under a lease of its own — rewritten shortly after anything in it changes,
// and gone when the replica dies (its lease expires) or stops (it revokes it) — and follows
// everyone else's through a watch.
import { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import type { EtcdStore } from '../store/etcd-store.js';
import type { StoreChange } from '../store/store.js';
import type { ReplicaSummary } from './summary.js';
import { REPLICA_PREFIX } from './summary.js';

export interface PresenceOptions {
  store: EtcdStore;
  id: string;
  ttlSeconds: number;
  log: Logger;
  /** Builds this replica's summary now (waits until its published state is the one it describes). */
  build(): Promise<ReplicaSummary>;
  /** Shortest time between two writes of the summary (default 100 ms). */
  minIntervalMs?: number;
}

/** A change is written after this quiet time, so a burst of ACKs makes one write. */
const DEBOUNCE_MS = 30;
const RETRY_MS = 1000;
const WARN_EVERY_MS = 30_000;

export class ReplicaPresence extends EventEmitter<{ update: [] }> {
  private readonly summaries = new Map<string, ReplicaSummary>();
  private lease?: Lease;
  private stopWatch?: () => void;
  private timer?: NodeJS.Timeout;
  private writing = false;
  private dirty = false;
  private lastWrite = 0;
  private warnedAt = 0;
  private closed = false;
  private readonly minInterval: number;

  constructor(private readonly opts: PresenceOptions) {
    super();
    this.setMaxListeners(0);
    this.minInterval = opts.minIntervalMs ?? 100;
  }

  /** Writes this replica's summary and follows the others'. Refuses an id a live replica uses
   *  (after a crash, waits for the dead one's lease to expire). */
  async start(): Promise<void> {
    await this.claimId();
    this.stopWatch = this.opts.store.watch(REPLICA_PREFIX, (c) => this.onChange(c), { onResync: () => void this.reread() });
    await this.reread();
    this.changed();
  }

  /** Something in this replica's summary changed: it is rewritten soon. */
  changed(): void {
    this.dirty = true;
    this.schedule(DEBOUNCE_MS);
  }

  /** The other live replicas' summaries. */
  others(): ReplicaSummary[] {
    return [...this.summaries.values()].filter((s) => s.id !== this.opts.id);
  }

  /** Resolves at the next change of another replica's summary, or after `timeoutMs`. */
  nextUpdate(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('update', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.once('update', done);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopWatch?.();
    // Revoking deletes the summary at once: the others stop counting this replica's nodes.
    await this.lease?.revoke().catch(() => undefined);
  }

  private async claimId(): Promise<void> {
    const key = REPLICA_PREFIX + this.opts.id;
    if (!(await this.opts.store.read(key))) return;
    this.opts.log.warn({ replica: this.opts.id }, 'a replica with this id was live a moment ago; waiting for its lease to expire');
    const deadline = Date.now() + (this.opts.ttlSeconds + 2) * 1000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      if (!(await this.opts.store.read(key))) return;
    }
    throw new Error(`replica id "${this.opts.id}" is in use by a live replica (its lease keeps being renewed); give each replica its own --replica-id`);
  }

  private onChange(c: StoreChange): void {
    const id = c.key.slice(REPLICA_PREFIX.length);
    if (c.value === undefined) this.summaries.delete(id);
    else if (isSummary(c.value)) this.summaries.set(id, c.value);
    else return;
    if (id !== this.opts.id) this.emit('update');
  }

  private async reread(): Promise<void> {
    try {
      const entries = await this.opts.store.entries<unknown>(REPLICA_PREFIX);
      this.summaries.clear();
      for (const e of entries) if (isSummary(e.value)) this.summaries.set(e.key.slice(REPLICA_PREFIX.length), e.value);
      this.emit('update');
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'cannot read the other replicas yet');
    }
  }

  private schedule(delay: number): void {
    if (this.closed || this.timer || this.writing) return;
    const wait = Math.max(delay, this.lastWrite + this.minInterval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, wait);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    if (this.closed || !this.dirty) return;
    this.writing = true;
    this.dirty = false;
    try {
      const summary = await this.opts.build();
      const lease = this.leaseFor();
      await lease.put(REPLICA_PREFIX + this.opts.id).value(JSON.stringify(summary)).exec();
      this.lastWrite = Date.now();
    } catch (err) {
      this.dirty = true;
      const quiet = Date.now() - this.warnedAt < WARN_EVERY_MS;
      if (!quiet) this.warnedAt = Date.now();
      this.opts.log[quiet ? 'debug' : 'warn']({ err: (err as Error).message }, 'cannot write this replica\'s summary to etcd; retrying every second');
      this.writing = false;
      this.schedule(RETRY_MS);
      return;
    }
    this.writing = false;
    if (this.dirty) this.schedule(DEBOUNCE_MS);
  }

  /** The lease the summary lives under; a new one when it was lost (etcd was unreachable too long). */
  private leaseFor(): Lease {
    if (this.lease && !this.lease.revoked()) return this.lease;
    const lease = this.opts.store.namespace.lease(this.opts.ttlSeconds);
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.opts.log.warn({ err: err.message }, 'this replica\'s lease was lost; writing its summary again');
      this.lease = undefined;
      this.changed();
    });
    this.lease = lease;
    return lease;
  }
}

function isSummary(v: unknown): v is ReplicaSummary {
  const s = v as ReplicaSummary;
  return typeof s === 'object' && s !== null && typeof s.id === 'string' && typeof s.applied === 'number' && typeof s.services === 'object' && Array.isArray(s.nodes);
}
