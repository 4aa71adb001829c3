// Store on etcd, for several replicas sharing one source of truth. Keys live under a prefix
// (`sluice/` by default) as JSON text; a key's revision is etcd's mod_revision, so revisions
// are comparable across replicas. A commit is one etcd transaction: expectations become
// compares on mod_revision (create_revision = 0 for "absent"), so two replicas can never
// overwrite each other's changes. Calls carry a deadline, so a lost quorum fails a commit with
// StoreUnavailableError instead of hanging it.
import {
  Etcd3,
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
import type { Entry, Expectations, QuarantineEntry, Store, StoreChange, StoreHealth, StoreOp } from './store.js';
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

export class EtcdStore implements Store {
  private readonly ns: Namespace;
  private readonly log: Logger;
  private readonly watchers = new Set<Promise<Watcher | undefined>>();
  private readonly disconnected = new Set<Promise<Watcher | undefined>>();
  private lastError?: StoreUnavailableError;
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
    return store;
  }

  async entries<T>(prefix: string): Promise<Entry<T>[]> {
    const res = await this.call(() => this.ns.getAll().prefix(prefix).sort('Key', 'Ascend').exec());
    return res.kvs
      .map((kv) => ({ key: kv.key.toString(), value: JSON.parse(kv.value.toString()) as T, revision: Number(kv.mod_revision) }))
      .filter((e) => !e.key.startsWith(QUARANTINE));
  }

  async read<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    checkKey(key);
    const res = await this.call(() => this.ns.get(key).exec());
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
    const res = await this.call(() => this.ns.getAll().prefix(QUARANTINE).exec());
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

  watch(prefix: string, onChange: (change: StoreChange) => void, opts: { afterRevision?: number } = {}): () => void {
    this.assertOpen();
    let builder = this.ns.watch().prefix(prefix);
    if (opts.afterRevision !== undefined) builder = builder.startRevision(String(opts.afterRevision + 1));
    const deliver = (change: StoreChange) => {
      if (change.key.startsWith(QUARANTINE)) return;
      try {
        onChange(change);
      } catch (err) {
        this.log.error({ key: change.key, err: (err as Error).message }, 'a store watcher threw');
      }
    };
    const watcher: Promise<Watcher | undefined> = builder.create().then(
      (w) => {
        w.on('put', (kv) => deliver({ key: kv.key.toString(), revision: Number(kv.mod_revision), value: JSON.parse(kv.value.toString()) }));
        w.on('delete', (kv) => deliver({ key: kv.key.toString(), revision: Number(kv.mod_revision) }));
        w.on('disconnected', () => this.disconnected.add(watcher));
        w.on('connected', () => this.disconnected.delete(watcher));
        w.on('error', (err) => this.log.error({ prefix, err: err.message }, 'etcd watch failed'));
        return w;
      },
      (err: Error) => {
        this.log.error({ prefix, err: err.message }, 'cannot start an etcd watch');
        this.disconnected.add(watcher);
        return undefined;
      },
    );
    this.watchers.add(watcher);
    return () => {
      this.watchers.delete(watcher);
      this.disconnected.delete(watcher);
      void watcher.then((w) => w?.cancel()).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
        this.callOptions(),
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
    this.lastError = undefined;
    return { revision: Number(res.header.revision) };
  }

  /** Runs an etcd call; a failure to reach etcd becomes StoreUnavailableError and marks health. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await fn();
    } catch (err) {
      const mapped = this.unavailable(err);
      this.lastError = mapped;
      this.log.error({ code: mapped.code }, mapped.message);
      throw mapped;
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

  private callOptions() {
    return { deadline: Date.now() + this.opts.callTimeoutMs };
  }

  private full(key: string): Buffer {
    return Buffer.from(this.opts.prefix + key);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('etcd store is closed');
  }
}

function clientOptions(opts: EtcdStoreOptions & { callTimeoutMs: number }): IOptions {
  const { tls } = opts;
  return {
    hosts: opts.hosts,
    dialTimeout: opts.callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.callTimeoutMs }),
    ...(tls?.ca || tls?.cert
      ? { credentials: { rootCertificate: tls.ca ?? (null as unknown as Buffer), privateKey: tls.key, certChain: tls.cert } } // null: system CAs
      : {}),
    ...(opts.auth ? { auth: { username: opts.auth.username, password: opts.auth.password } } : {}),
  };
}
