// Store on etcd, for several replicas sharing one source of truth. Keys live under a prefix
// (`sluice/` by default) as JSON text; a key's revision is etcd's mod_revision, so revisions
// are comparable across replicas. A commit is one etcd transaction: expectations become
// compares on mod_revision (create_revision = 0 for "absent"), so two replicas can never
// overwrite each other's changes. Calls carry a deadline, so a lost quorum fails a commit with
// StoreUnavailableError instead of hanging it.
import { circuitBreaker, ConsecutiveBreaker, handleWhen } from 'cockatiel';
import {
  Etcd3,
  isRecoverableError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import type { IOptions, IRequestOp, Namespace, Watcher } from 'etcd3';
import pino from 'pino';
import type { Logger } from 'pino';
import type { Entry, Expectations, QuarantineEntry, Snapshot, Store, StoreChange, StoreHealth, StoreOp, WatchOptions } from './store.js';
import { checkCommit, checkKey, StoreConflictError, StoreUnavailableError } from './store.js';

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://10.0.0.1:2379`; `https://` for TLS. */
  hosts: string[];
  /** Every key is stored under this prefix (default `sluice/`). */
  prefix?: string;
  /** PEM contents. With `ca`, the server must present a certificate it signed; `cert`/`key` for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  auth?: { username: string; password: string };
  /** Deadline of each call (default 5 s): past it, the call fails with StoreUnavailableError. */
  callTimeoutMs?: number;
  log?: Logger;
}

const QUARANTINE = 'quarantine/';
/** How often health is checked (besides every call). */
const PROBE_MS = 2000;

export class EtcdStore implements Store {
  private readonly ns: Namespace;
  private readonly log: Logger;
  private readonly watchers = new Set<Promise<Watcher | undefined>>();
  private readonly disconnected = new Set<Promise<Watcher | undefined>>();
  private lastError?: StoreUnavailableError;
  private probeTimer?: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly client: Etcd3,
    private readonly opts: EtcdStoreOptions & { prefix: string; callTimeoutMs: number },
  ) {
    this.ns = client.namespace(opts.prefix);
    this.log = (opts.log ?? pino({ level: 'silent' })).child({ component: 'store', etcd: opts.hosts.join(',') });
  }

  /** Connects and checks that etcd answers (StoreUnavailableError when it does not). */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    if (options.hosts.length === 0) throw new Error('etcd store needs at least one host');
    const opts = { ...options, prefix: options.prefix ?? 'sluice/', callTimeoutMs: options.callTimeoutMs ?? 5_000 };
    const client = new Etcd3(clientOptions(opts));
    const store = new EtcdStore(client, opts);
    try {
      await store.call(() => store.ns.getAll().prefix('').count());
    } catch (err) {
      client.close();
      throw err;
    }
    store.probe();
    return store;
  }

  async entries<T>(prefix: string): Promise<Entry<T>[]> {
    const res = await this.call(() => this.ns.getAll().prefix(prefix).sort('Key', 'Ascend').exec(), READ);
    return res.kvs
      .map((kv) => ({ key: kv.key.toString(), value: this.parse(kv.key.toString(), kv.value) as T, revision: Number(kv.mod_revision) }))
      .filter((e) => !e.key.startsWith(QUARANTINE) && e.value !== undefined);
  }

  async snapshot(prefixes: readonly string[]): Promise<Snapshot> {
    // One transaction of range reads: every prefix as of the same revision.
    const res = await this.call(
      () =>
        this.client.kv.txn(
          { compare: [], success: prefixes.map((p) => ({ request_range: { key: this.full(p), range_end: rangeEnd(this.full(p)) } })), failure: [] },
          // No options: the client's default gives each attempt its own deadline (a fixed one
          // left the client's retries on another member with no time at all).
        ),
      READ,
    );
    const entries: Entry[] = [];
    for (const r of res.responses)
      for (const kv of r.response_range.kvs) {
        const key = kv.key.toString().slice(this.opts.prefix.length);
        if (key.startsWith(QUARANTINE)) continue;
        const value = this.parse(key, kv.value);
        if (value !== undefined) entries.push({ key, value, revision: Number(kv.mod_revision) });
      }
    return { revision: Number(res.header.revision), entries };
  }

  async read<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    checkKey(key);
    const res = await this.call(() => this.ns.get(key).exec(), READ);
    const kv = res.kvs[0];
    return kv && { value: JSON.parse(kv.value.toString()) as T, revision: Number(kv.mod_revision) };
  }

  async commit(ops: StoreOp[], expect?: Expectations): Promise<{ revision: number }> {
    this.assertOpen();
    const expected = checkCommit(ops, expect);
    const success: IRequestOp[] = ops.map((op) => {
      if (!('put' in op)) return { request_delete_range: { key: this.full(op.delete) } };
      const text = JSON.stringify(op.value) as string | undefined;
      if (text === undefined) throw new Error(`store value of ${op.put} is not JSON`);
      return { request_put: { key: this.full(op.put), value: Buffer.from(text) } };
    });
    return this.transact(expected, success);
  }

  async quarantine(key: string, reason: string, revision?: number): Promise<QuarantineEntry> {
    this.assertOpen();
    checkKey(key);
    const current = await this.call(() => this.ns.get(key).exec());
    const kv = current.kvs[0];
    const actual = kv ? Number(kv.mod_revision) : 0;
    if (revision !== undefined && actual !== revision) throw new StoreConflictError(key, revision, actual);
    if (!kv) throw new Error(`cannot quarantine ${key}: no such key`);
    const at = new Date().toISOString();
    const movedTo = `${QUARANTINE}${key}/${at}`;
    const entry: QuarantineEntry = { key, file: this.opts.prefix + key, movedTo: this.opts.prefix + movedTo, reason, at };
    const record = { ...entry, value: kv.value.toString() };
    // Moves exactly the value that was read: the delete happens only if nobody changed it since.
    await this.transact(new Map([[key, actual]]), [
      { request_delete_range: { key: this.full(key) } },
      { request_put: { key: this.full(movedTo), value: Buffer.from(JSON.stringify(record)) } },
    ]);
    this.log.error({ key, movedTo: entry.movedTo, reason }, `quarantined ${entry.file}: ${reason}`);
    return entry;
  }

  async quarantined(): Promise<QuarantineEntry[]> {
    const res = await this.call(() => this.ns.getAll().prefix(QUARANTINE).exec(), READ);
    return res.kvs
      .map((kv) => JSON.parse(kv.value.toString()) as QuarantineEntry & { value?: string })
      .map(({ key, file, movedTo, reason, at }) => ({ key, file, movedTo, reason, at }))
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  health(): StoreHealth {
    if (this.closed) return { ok: false, message: 'store is closed' };
    if (this.lastError) return { ok: false, message: this.lastError.message };
    if (this.disconnected.size > 0) return { ok: false, message: `etcd at ${this.opts.hosts.join(',')}: watch disconnected, reconnecting` };
    return { ok: true };
  }

  watch(prefix: string, onChange: (change: StoreChange) => void, opts: WatchOptions = {}): () => void {
    this.assertOpen();
    const only = opts.only;
    const wanted = (key: string) => !key.startsWith(QUARANTINE) && (!only || only.some((p) => key.startsWith(prefix + p)));
    const deliver = (change: StoreChange) => {
      try {
        onChange(change);
      } catch (err) {
        this.log.error({ key: change.key, err: (err as Error).message }, 'a store watcher threw');
      }
    };
    let current: Promise<Watcher | undefined> | undefined;
    let stopped = false;
    const start = (afterRevision: number | undefined, resync: boolean) => {
      let builder = this.ns.watch().prefix(prefix);
      if (afterRevision !== undefined) builder = builder.startRevision(String(afterRevision + 1));
      let broken = false;
      const watcher: Promise<Watcher | undefined> = builder.create().then(
        (w) => {
          w.on('put', (kv) => {
            const key = kv.key.toString();
            if (!wanted(key)) return;
            const value = this.parse(key, kv.value);
            // A value that is not JSON was not written by a store: reported as gone.
            deliver(value === undefined ? { key, revision: Number(kv.mod_revision) } : { key, revision: Number(kv.mod_revision), value });
          });
          w.on('delete', (kv) => {
            const key = kv.key.toString();
            if (wanted(key)) deliver({ key, revision: Number(kv.mod_revision) });
          });
          w.on('disconnected', () => {
            broken = true;
            this.disconnected.add(watcher);
          });
          w.on('connected', () => {
            this.disconnected.delete(watcher);
            // etcd3 resumed from the last revision it saw; re-reading makes sure of it.
            if (broken) opts.onResync?.();
            broken = false;
          });
          // Cancelled by etcd (e.g. its resume revision was compacted): a new watch from now,
          // and the caller re-reads what it missed.
          w.on('error', (err) => {
            this.log.warn({ prefix, err: err.message }, 'etcd watch cancelled; watching again and re-reading');
            this.disconnected.delete(watcher);
            this.watchers.delete(watcher);
            void w.cancel().catch(() => undefined);
            if (!stopped && !this.closed) setTimeout(() => !stopped && !this.closed && start(undefined, true), 100).unref();
          });
          if (resync) opts.onResync?.();
          return w;
        },
        (err: Error) => {
          this.log.error({ prefix, err: err.message }, 'cannot start an etcd watch; retrying');
          this.disconnected.add(watcher);
          this.watchers.delete(watcher);
          if (!stopped && !this.closed)
            setTimeout(() => {
              this.disconnected.delete(watcher);
              if (!stopped && !this.closed) start(afterRevision, resync);
            }, 1000).unref();
          return undefined;
        },
      );
      this.watchers.add(watcher);
      current = watcher;
    };
    start(opts.afterRevision, false);
    return () => {
      stopped = true;
      const w = current;
      if (!w) return;
      this.watchers.delete(w);
      this.disconnected.delete(w);
      void w.then((x) => x?.cancel()).catch(() => undefined);
    };
  }

  /** The etcd namespace under the prefix, for leases and elections (src/replica). */
  get namespace(): Namespace {
    return this.ns;
  }

  /** For logs: the endpoints and the prefix (never credentials). */
  describe(): string {
    return `etcd ${this.opts.hosts.join(',')} prefix ${this.opts.prefix}`;
  }

  /** Where this store keeps its keys in etcd (`sluice/`). */
  get prefix(): string {
    return this.opts.prefix;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    await Promise.all([...this.watchers].map((w) => w.then((x) => x?.cancel()).catch(() => undefined)));
    this.watchers.clear();
    this.client.close();
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * One transaction: `success` runs if every expectation holds; otherwise the expected keys are
   * read back to name the first one that differs.
   */
  private async transact(expected: Map<string, number>, success: IRequestOp[]): Promise<{ revision: number }> {
    const keys = [...expected.keys()];
    const res = await this.call(() =>
      this.client.kv.txn(
        {
          compare: keys.map((key) => {
            const revision = expected.get(key)!;
            return revision === 0
              ? { key: this.full(key), target: 'Create', result: 'Equal', create_revision: 0 }
              : { key: this.full(key), target: 'Mod', result: 'Equal', mod_revision: revision };
          }),
          success,
          failure: keys.map((key) => ({ request_range: { key: this.full(key) } })),
        },
        // Each attempt its own deadline (clientOptions): after a first attempt spent waiting on a
        // dead member, the client's retry on a live one still has time.
      ),
    );
    if (!res.succeeded) {
      for (const [i, key] of keys.entries()) {
        const kv = res.responses[i]?.response_range.kvs[0];
        const actual = kv ? Number(kv.mod_revision) : 0;
        if (actual !== expected.get(key)) throw new StoreConflictError(key, expected.get(key)!, actual);
      }
      throw new Error('etcd transaction failed without a differing key'); // cannot happen: a compare failed
    }
    return { revision: Number(res.header.revision) };
  }

  /**
   * Runs an etcd call; a failure to reach etcd becomes StoreUnavailableError and marks health
   * until a later call succeeds (every call is linearizable, so it needs a quorum). An
   * idempotent read that failed fast — its member's connection down or backing off, as right
   * after a member died or came back, while the others answer — is tried again while the call
   * timeout leaves time: the client's own retries may all pick such members.
   */
  private async call<T>(fn: () => Promise<T>, opts: { idempotent?: boolean } = {}): Promise<T> {
    this.assertOpen();
    const deadline = Date.now() + this.opts.callTimeoutMs;
    for (;;) {
      try {
        const result = await fn();
        this.healed();
        return result;
      } catch (err) {
        const retry = opts.idempotent && !this.closed && Date.now() + READ_RETRY_MS < deadline && this.unavailable(err).code === 'EUNAVAILABLE';
        if (retry) {
          await new Promise((r) => setTimeout(r, READ_RETRY_MS));
          continue;
        }
        throw this.failed(err);
      }
    }
  }

  /** What a failed call throws: a conflict as it is, anything else as StoreUnavailableError
   *  (which marks health until a call succeeds). */
  private failed(err: unknown): Error {
    if (err instanceof StoreConflictError) return err;
    const mapped = this.unavailable(err);
    if (!this.lastError) this.log.error({ code: mapped.code }, mapped.message);
    this.lastError = mapped;
    return mapped;
  }

  private healed(): void {
    if (!this.lastError) return;
    this.lastError = undefined;
    this.log.info('etcd answers again');
  }

  /** Checks every PROBE_MS that etcd answers (a linearizable read needs a quorum), so health
   *  follows etcd without waiting for a write. */
  private probe(): void {
    if (this.probeTimer || this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.closed) return;
      this.call(() => this.ns.get('meta/probe').exec())
        .catch(() => undefined)
        .finally(() => this.probe());
    }, PROBE_MS);
    this.probeTimer.unref();
  }

  /** Parses a stored value; undefined (logged) when it is not JSON. */
  private parse(key: string, raw: Buffer): unknown {
    try {
      return JSON.parse(raw.toString()) as unknown;
    } catch {
      this.log.error({ key }, 'etcd value is not JSON; ignored');
      return undefined;
    }
  }

  private unavailable(err: unknown): StoreUnavailableError {
    const hosts = this.opts.hosts.join(',');
    const message = err instanceof Error ? err.message : String(err);
    const refused = [EtcdAuthenticationFailedError, EtcdInvalidAuthTokenError, EtcdPermissionDeniedError, GRPCUnauthenticatedError];
    if (refused.some((type) => err instanceof type))
      return new StoreUnavailableError('EACCES', `etcd at ${hosts} refused this client (${message})`, { cause: err });
    const timedOut = err instanceof GRPCDeadlineExceededError;
    const down = err instanceof GRPCUnavailableError || /circuit|connect|unavailable/i.test(message);
    return new StoreUnavailableError(
      'EUNAVAILABLE',
      `etcd at ${hosts} ${timedOut ? `did not answer within ${this.opts.callTimeoutMs} ms` : down ? 'is unreachable' : 'failed'} (${message})`,
      { cause: err },
    );
  }


  private full(key: string): Buffer {
    return Buffer.from(this.opts.prefix + key);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('etcd store is closed');
  }
}

/** The end of the key range that holds every key starting with `prefix` (etcd's prefix range). */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--)
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  return Buffer.from([0]);
}

/** Options for reads (see `call`). */
const READ = { idempotent: true };
const READ_RETRY_MS = 100;

function clientOptions(opts: EtcdStoreOptions & { callTimeoutMs: number }): IOptions {
  const { tls } = opts;
  return {
    hosts: opts.hosts,
    dialTimeout: opts.callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.callTimeoutMs }),
    // A member that fails three calls in a row is skipped for a second (the client's default is
    // five): once etcd is back, calls must not keep failing fast.
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
    },
    ...(tls?.ca || tls?.cert
      ? { credentials: { rootCertificate: tls.ca ?? (null as unknown as Buffer), privateKey: tls.key, certChain: tls.cert } } // null: system CAs
      : {}),
    ...(opts.auth ? { auth: { username: opts.auth.username, password: opts.auth.password } } : {}),
  };
}
