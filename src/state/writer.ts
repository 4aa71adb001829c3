// The one writer of the desired state. Every change of a service — its declaration or its
// rollout — goes through one serialised path per service, so each check runs against the
// state it will be applied to. A change is checked against the whole resulting configuration,
// stored, and only then published (the 'change' event); services never wait for each other,
// except that declarations (rare, and checked against every other service) take turns.
//
// Several replicas may share the store (etcd). Every commit carries expectations on the
// revisions its checks saw — the service's keys, and for declarations the shared
// meta/declarations key — so no replica can overwrite another's change or race its name
// claims. A commit that loses such a race re-reads the store and is applied once more to
// what is there now (a rollback up to five times), else answers 409. Other replicas' commits
// arrive through the store's watch and are published like local ones; after a gap in the
// watch everything is re-read.
//
// The one exception to "stored before published" is safety: a rollback the store cannot take
// is published anyway, reported as not persisted, and retried until it lands — applied to
// whatever the store holds by then, so it never overwrites another replica's later change.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { RolloutSpec, RolloutState } from '../model/rollout.js';
import type { NamedService, Service } from '../model/service.js';
import { hasVersion } from '../model/service.js';
import type { RolloutEvent } from '../rollout/machine.js';
import { createRollout, isActive, transition } from '../rollout/machine.js';
import type { Expectations, Store, StoreChange, StoreOp } from '../store/store.js';
import { snapshotOf, StoreConflictError } from '../store/store.js';
import {
  archiveKey,
  ARCHIVE_PREFIX,
  DECLARATIONS_KEY,
  entryOfKey,
  MAX_ARCHIVED,
  rolloutKey,
  serviceKey,
  STATE_PREFIXES,
} from './keys.js';
import { checkNames, checkRollouts } from './config-check.js';
import type { ConfigCheck, ConfigProblem, DesiredState } from './desired-state.js';
import { EMPTY_STATE, withService } from './desired-state.js';
import { ConflictError, InvalidFieldError, NotFoundError, NotPersistedError, NotWritableError } from './errors.js';
import { loadState, parseRollout, parseService } from './load.js';
import { Serial } from './serial.js';

export interface StateChange {
  readonly state: DesiredState;
  /** Services whose routing may have changed. */
  readonly services: readonly string[];
  /** A rollback: published at once, without the debounce that coalesces other changes. */
  readonly urgent: boolean;
}

/** Who made a rollout change: this replica, or another one (seen through the store). */
export type ChangeOrigin = 'local' | 'remote';

export interface StateWriterOptions {
  store: Store;
  log: Logger;
  /** Checks that need translation (the reconciler's): a candidate must be publishable. */
  check?: ConfigCheck;
  now?: () => Date;
  /** First delay between attempts to persist a rollback the store refused (doubles up to 5 s). */
  retryMs?: number;
  /** Follow the store's watch (other replicas' commits). Default true. */
  watch?: boolean;
}

export interface RolloutEventOptions {
  /** More expectations the commit needs (the scheduler's leadership key). A conflict on one of
   *  them is final: the change is not applied again. */
  fence?: Expectations;
}

export interface PersistenceStatus {
  ok: boolean;
  store: { ok: boolean; message?: string };
  /** Services whose latest state is published but not yet stored. */
  unpersisted: string[];
}

type Events = { change: [StateChange]; rollout: [RolloutState, ChangeOrigin] };

/** A key's revision as this replica last saw it (0 and not present: never seen). */
interface Known {
  revision: number;
  present: boolean;
}

/** A rollback that was published but not stored. */
interface PendingRollback {
  event: RolloutEvent;
  by: string;
  state: RolloutState;
  ops: StoreOp[];
  expect: Expectations;
}

interface Plan {
  ops: StoreOp[];
  expect: Expectations;
  /** The candidate state: this change's services are taken from it when it is published. */
  next: DesiredState;
  services: string[];
  urgent: boolean;
}

const MAX_RETRY_MS = 5000;
/** Re-applications after losing a race with another replica. */
const CONFLICT_RETRIES = 1;
const ROLLBACK_CONFLICT_RETRIES = 5;

export class StateWriter extends EventEmitter<Events> {
  private current: DesiredState = EMPTY_STATE;
  private readonly serials = new Map<string, Serial>();
  /** Declarations take turns on this replica: each one expects meta/declarations as it saw it. */
  private readonly declarations = new Serial();
  private readonly known = new Map<string, Known>();
  /** Keys with a local commit in flight: watch reports of them wait until it settles. */
  private readonly held = new Map<string, number>();
  private deferred: StoreChange[] = [];
  private incoming: StoreChange[] = [];
  /** The highest store revision the watch (or a re-read) has delivered. */
  private received = 0;
  private readonly pending = new Map<string, PendingRollback>();
  private stopWatch?: () => void;
  private resyncQueued?: Promise<void>;
  private resyncRunning?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private retryAt = 0;
  private retryDelay: number;
  private lastStoreError?: Error;
  private closed = false;
  private readonly now: () => Date;

  constructor(private readonly opts: StateWriterOptions) {
    super();
    this.setMaxListeners(0);
    this.now = opts.now ?? (() => new Date());
    this.retryDelay = opts.retryMs ?? 250;
  }

  get state(): DesiredState {
    return this.current;
  }

  /** The store revision up to which every change (of any replica) is applied here. */
  get appliedRevision(): number {
    return this.deferred.length > 0 ? Math.min(...this.deferred.map((c) => c.revision)) - 1 : this.received;
  }

  /** The store revision of a service's latest change known here (0: none). */
  serviceRevision(name: string): number {
    return Math.max(this.known.get(serviceKey(name))?.revision ?? 0, this.known.get(rolloutKey(name))?.revision ?? 0);
  }

  /** Whether the published state of a service is the stored one (no rollback waits to be stored). */
  isPersisted(name: string): boolean {
    return !this.pending.has(name);
  }

  /** Reads the store; whatever cannot be used is quarantined (and logged), never fatal. Then
   *  follows the store's watch, so other replicas' changes are applied as they are committed. */
  async load(): Promise<void> {
    const loaded = await loadState(this.opts.store, this.opts.log, this.opts.check);
    this.current = loaded.state;
    for (const [key, revision] of loaded.revisions) this.known.set(key, { revision, present: true });
    this.received = loaded.revision;
    this.emit('change', { state: this.current, services: [...this.current.services.keys()], urgent: false });
    if (this.opts.watch !== false && !this.closed)
      this.stopWatch = this.opts.store.watch('', (change) => this.receive(change), {
        afterRevision: loaded.revision,
        only: STATE_PREFIXES,
        onResync: () => void this.resync().catch((err: Error) => this.opts.log.warn({ err: err.message }, 'cannot re-read the store yet')),
      });
  }

  persistence(): PersistenceStatus {
    const store = this.opts.store.health();
    const unpersisted = [...this.pending.keys()].sort();
    return { ok: store.ok && unpersisted.length === 0, store, unpersisted };
  }

  /** Creates or replaces a service; returns whether it was created. */
  putService(name: string, spec: Service, by: string): Promise<{ service: NamedService; created: boolean }> {
    return this.serialOf(name).run(async () => {
      await this.settlePending(name);
      return this.declarations.run(() =>
        this.withRetries(name, async () => {
          const expect = this.expectOf([serviceKey(name), rolloutKey(name), DECLARATIONS_KEY]);
          const service: NamedService = { name, ...spec };
          const created = !this.current.services.has(name);
          const candidate = withService(this.current, name, { service });
          this.assertPublishable(candidate, name);
          const ops: StoreOp[] = [
            { put: serviceKey(name), value: service },
            { put: DECLARATIONS_KEY, value: { service: name, by, at: this.now().toISOString() } },
          ];
          await this.commit({ ops, expect, next: candidate, services: [name], urgent: false });
          this.opts.log.info({ service: name, created, by }, 'service declared');
          return { service, created };
        }),
      );
    });
  }

  /** Deletes a service without an active rollout; its finished rollout goes to the archive. */
  deleteService(name: string, by: string): Promise<void> {
    return this.serialOf(name).run(async () => {
      await this.settlePending(name);
      await this.withRetries(name, async () => {
        const expect = this.expectOf([serviceKey(name), rolloutKey(name)]);
        const base = this.current;
        if (!base.services.has(name)) throw new NotFoundError(`service "${name}" not found`);
        const rollout = base.rollouts.get(name);
        if (rollout && isActive(rollout)) throw new ConflictError(`service "${name}" has an active rollout; roll it back or promote it first`, 'service');
        const ops: StoreOp[] = [{ delete: serviceKey(name) }, ...(rollout ? [{ delete: rolloutKey(name) }, ...(await this.archiveOps(rollout))] : [])];
        const next = withService(base, name, { service: null, rollout: rollout ? null : undefined });
        await this.commit({ ops, expect, next, services: [name], urgent: false });
      });
      this.opts.log.info({ service: name, by }, 'service deleted');
    });
  }

  createRollout(spec: RolloutSpec, by: string): Promise<RolloutState> {
    return this.serialOf(spec.service).run(async () => {
      await this.settlePending(spec.service);
      return this.withRetries(spec.service, async () => {
        const expect = this.expectOf([serviceKey(spec.service), rolloutKey(spec.service)]);
        const base = this.current;
        const service = base.services.get(spec.service);
        if (!service) throw new NotFoundError(`service "${spec.service}" not found`);
        if (!hasVersion(service, spec.canary))
          throw new InvalidFieldError('canary', `"${spec.canary}" is not a version of service "${spec.service}"`);
        if (spec.canary === service.stable)
          throw new InvalidFieldError('canary', `"${spec.canary}" is already the stable version of "${spec.service}"`);
        const previous = base.rollouts.get(spec.service);
        if (previous && isActive(previous))
          throw new ConflictError(`service "${spec.service}" already has an active rollout (${previous.phase})`, 'service');
        const state = createRollout(randomUUID(), spec, service.stable, this.now(), by);
        const candidate = withService(base, spec.service, { rollout: state });
        this.assertPublishable(candidate, spec.service);
        const ops: StoreOp[] = [...(previous ? await this.archiveOps(previous) : []), { put: rolloutKey(spec.service), value: state }];
        await this.commit({ ops, expect, next: candidate, services: [spec.service], urgent: false });
        this.announce(state, 'local');
        return state;
      });
    });
  }

  /** Applies an action or an event to a service's rollout. A promotion changes the service's
   *  stable version in the same atomic commit, so a restart can never apply it twice. */
  rolloutEvent(service: string, event: RolloutEvent, by: string, opts: RolloutEventOptions = {}): Promise<RolloutState> {
    return this.serialOf(service).run(async () => {
      if (this.pending.has(service)) {
        await this.persistPending(service).catch(() => undefined);
        const current = this.current.rollouts.get(service);
        // Still not stored: only what changes nothing (a second rollback) is answered.
        if (this.pending.has(service) && current && !transition(current, event, this.now(), by).changed) return current;
        await this.settlePending(service);
      }
      return this.withRetries(service, async () => {
        const expect = { ...this.expectOf([rolloutKey(service), serviceKey(service)]), ...opts.fence };
        const base = this.current;
        const current = base.rollouts.get(service);
        if (!current) throw new NotFoundError(`no rollout for service "${service}"`);
        const { state, changed } = transition(current, event, this.now(), by);
        if (!changed) return current;
        const ops: StoreOp[] = [{ put: rolloutKey(service), value: state }];
        let declared: NamedService | undefined;
        if (state.phase === 'Promoted' && current.phase !== 'Promoted') {
          const before = base.services.get(service);
          if (before && hasVersion(before, state.canary)) {
            declared = { ...before, stable: state.canary };
            ops.push({ put: serviceKey(service), value: declared });
          }
        }
        const candidate = withService(base, service, { rollout: state, service: declared });
        const urgent = state.phase === 'RolledBack';
        // A rollback only takes traffic away from the canary: it is never refused. While the
        // store is known to fail, it does not wait for the store's answer (a timeout) either.
        if (!urgent) this.assertPublishable(candidate, service);
        else if (!this.opts.store.health().ok) this.publish(candidate, [service], true);
        try {
          await this.commit({ ops, expect, next: candidate, services: [service], urgent });
        } catch (err) {
          if (!urgent || err instanceof StoreConflictError) throw err;
          // The store refused a rollback: the fleet gets it anyway, the store when it can.
          this.publish(candidate, [service], true);
          this.pending.set(service, { event, by, state, ops, expect: this.expectOf([rolloutKey(service), serviceKey(service)]) });
          this.lastStoreError = err as Error;
          this.opts.log.error({ err, service }, 'rollback published but not persisted; retrying');
          this.scheduleRetry();
          this.announce(state, 'local');
          throw new NotPersistedError(state, err as Error);
        }
        this.announce(state, 'local');
        return state;
      }, event.type === 'rollback');
    });
  }

  /** Removes a finished rollout (it stays in the service's rollout archive). */
  deleteRollout(service: string, by: string): Promise<void> {
    return this.serialOf(service).run(async () => {
      await this.settlePending(service);
      await this.withRetries(service, async () => {
        const expect = this.expectOf([rolloutKey(service), serviceKey(service)]);
        const base = this.current;
        const rollout = base.rollouts.get(service);
        if (!rollout) throw new NotFoundError(`no rollout for service "${service}"`);
        if (isActive(rollout)) throw new ConflictError(`the rollout of "${service}" is ${rollout.phase}; roll it back or promote it first`, 'service');
        const ops: StoreOp[] = [{ delete: rolloutKey(service) }, ...(await this.archiveOps(rollout))];
        await this.commit({ ops, expect, next: withService(base, service, { rollout: null }), services: [service], urgent: false });
        this.opts.log.info({ service, rollout: rollout.id, by }, 'rollout deleted (archived)');
      });
    });
  }

  /** Past rollouts of a service, newest first (the current one is not included). */
  async archive(service: string): Promise<RolloutState[]> {
    const entries = await this.opts.store.entries<RolloutState>(`${ARCHIVE_PREFIX}${service}/`);
    return entries.map((e) => e.value).reverse();
  }

  /** Re-reads every state key and applies what changed (after a gap in the watch, or a lost race).
   *  Calls made while one runs share the next one. */
  resync(): Promise<void> {
    if (this.resyncQueued) return this.resyncQueued;
    const queued = (this.resyncRunning ?? Promise.resolve())
      .catch(() => undefined)
      .then(async () => {
        this.resyncQueued = undefined;
        const running = this.readEverything();
        this.resyncRunning = running;
        try {
          await running;
        } finally {
          if (this.resyncRunning === running) this.resyncRunning = undefined;
        }
      });
    this.resyncQueued = queued;
    return queued;
  }

  close(): void {
    this.closed = true;
    this.stopWatch?.();
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  // ---- internals -------------------------------------------------------------------------------

  private serialOf(service: string): Serial {
    let s = this.serials.get(service);
    if (!s) this.serials.set(service, (s = new Serial()));
    return s;
  }

  /** Expectations on keys as this replica knows them: what a change was derived from. */
  private expectOf(keys: string[]): Expectations {
    const expect: Expectations = {};
    for (const key of keys) {
      const k = this.known.get(key);
      expect[key] = k?.present ? k.revision : 0;
    }
    return expect;
  }

  private assertPublishable(candidate: DesiredState, service: string): void {
    const changed = [service];
    const problems: ConfigProblem[] = [...checkNames(candidate, changed), ...checkRollouts(candidate, changed)];
    if (problems.length === 0 && this.opts.check) problems.push(...this.opts.check(candidate, changed));
    const first = problems[0];
    if (first) throw new ConflictError(problems.map((p) => p.message).join('; '), first.field);
  }

  /** Runs `attempt`; when another replica won a race on the same keys, re-reads the store and
   *  runs it again against what is there now: once, or for a rollback (which must win) up to
   *  five times, even when the store cannot be re-read (it is then published unstored). */
  private async withRetries<T>(service: string, attempt: () => Promise<T>, rollback = false): Promise<T> {
    const retries = rollback ? ROLLBACK_CONFLICT_RETRIES : CONFLICT_RETRIES;
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
        if (err.key !== DECLARATIONS_KEY && !entryOfKey(err.key))
          throw new ConflictError(`the change was not applied: ${err.key} changed (this replica no longer holds it)`);
        if (i >= retries) {
          this.opts.log.warn({ service, key: err.key }, 'changed concurrently on another replica again; giving up');
          throw new ConflictError(`service "${service}" was changed concurrently on another replica; try again`, 'service');
        }
        this.opts.log.info({ service, key: err.key }, 'changed concurrently on another replica: re-reading the store and applying the change again');
        await this.resync().catch((e: Error) => {
          if (!rollback) throw new NotWritableError(e);
        });
      }
    }
  }

  /** Archives a finished rollout and prunes the service's archive to its bound. */
  private async archiveOps(rollout: RolloutState): Promise<StoreOp[]> {
    const prefix = `${ARCHIVE_PREFIX}${rollout.service}/`;
    const kept = (await this.opts.store.entries(prefix)).map((e) => e.key);
    const key = archiveKey(rollout);
    const after = [...new Set([...kept, key])].sort();
    const pruned = after.slice(0, Math.max(0, after.length - MAX_ARCHIVED));
    return [{ put: key, value: rollout }, ...pruned.filter((k) => k !== key).map((k) => ({ delete: k }))];
  }

  /** Stores, then publishes. Conflicts are thrown as they are (the caller retries); an urgent
   *  change's other failures too (the caller publishes it anyway); any other change failing
   *  is not applied at all. */
  private async commit(plan: Plan): Promise<void> {
    if (this.closed) throw new Error('the state writer is closed');
    const keys = [...new Set([...plan.ops.map(keyOf), ...Object.keys(plan.expect)])];
    this.hold(keys);
    try {
      const { revision } = await this.opts.store.commit(plan.ops, plan.expect);
      for (const op of plan.ops) this.known.set(keyOf(op), { revision, present: 'put' in op });
      this.lastStoreError = undefined;
      this.publish(plan.next, plan.services, plan.urgent);
      if (this.pending.size > 0) this.scheduleRetry(0); // the store answers again
    } catch (err) {
      if (err instanceof StoreConflictError || plan.urgent) throw err;
      throw new NotWritableError(err as Error);
    } finally {
      this.release(keys);
    }
  }

  private publish(next: DesiredState, services: string[], urgent: boolean): void {
    // `next` was built before the store answered, and other services may have published since:
    // take only this change's services from it, so nobody else's change is undone.
    let state = this.current;
    for (const name of services) state = withService(state, name, { service: next.services.get(name) ?? null, rollout: next.rollouts.get(name) ?? null });
    this.current = { ...state, revision: this.current.revision + 1 };
    this.emit('change', { state: this.current, services, urgent });
  }

  private announce(state: RolloutState, origin: ChangeOrigin): void {
    const last = state.history.at(-1);
    this.opts.log.info(
      { service: state.service, phase: state.phase, weights: state.weights, event: last?.event, by: last?.by, reason: last?.reason, origin },
      'rollout changed',
    );
    this.emit('rollout', state, origin);
  }

  // ---- other replicas' commits -------------------------------------------------------------

  private receive(change: StoreChange): void {
    this.incoming.push(change);
    // The changes of one commit arrive together: they are applied together.
    if (this.incoming.length === 1) queueMicrotask(() => this.applyChanges(this.incoming.splice(0)));
  }

  private hold(keys: string[]): void {
    for (const k of keys) this.held.set(k, (this.held.get(k) ?? 0) + 1);
  }

  private release(keys: string[]): void {
    for (const k of keys) {
      const n = (this.held.get(k) ?? 1) - 1;
      if (n > 0) this.held.set(k, n);
      else this.held.delete(k);
    }
    if (this.deferred.length === 0) return;
    const ready = this.deferred.filter((c) => !this.held.has(c.key));
    if (ready.length === 0) return;
    this.deferred = this.deferred.filter((c) => this.held.has(c.key));
    this.applyChanges(ready);
  }

  /**
   * Applies store changes (in revision order) this replica does not hold yet. Changes of keys
   * with a local commit in flight wait for it; a service whose rollback is not stored yet
   * keeps it (its retry applies the rollback to what the store holds).
   */
  private applyChanges(changes: StoreChange[]): void {
    if (this.closed) return;
    const updates = new Map<string, { service?: NamedService | null; rollout?: RolloutState | null }>();
    let retry = false;
    for (const c of changes) {
      if (c.revision > this.received) this.received = c.revision;
      const k = this.known.get(c.key);
      if (k && k.revision >= c.revision) continue;
      if (this.held.has(c.key)) {
        this.deferred.push(c);
        continue;
      }
      const entry = entryOfKey(c.key);
      if (c.key !== DECLARATIONS_KEY && !entry) continue;
      if (entry && this.pending.has(entry.name)) {
        retry = true;
        continue;
      }
      this.known.set(c.key, { revision: c.revision, present: c.value !== undefined });
      if (!entry) continue;
      let update = updates.get(entry.name);
      if (!update) updates.set(entry.name, (update = {}));
      if (c.value === undefined) {
        update[entry.kind] = null;
        continue;
      }
      const parsed = entry.kind === 'service' ? parseService(entry.name, c.value) : parseRollout(entry.name, c.value);
      if (typeof parsed === 'string') {
        this.opts.log.error({ key: c.key, reason: parsed }, 'a value stored by another replica cannot be used; the previous one stays');
        continue;
      }
      if (entry.kind === 'service') update.service = parsed as NamedService;
      else update.rollout = parsed as RolloutState;
    }
    if (retry) this.scheduleRetry(0);
    if (updates.size === 0) return;

    const services = new Map(this.current.services);
    const rollouts = new Map(this.current.rollouts);
    const changed: string[] = [];
    const announced: RolloutState[] = [];
    let urgent = false;
    for (const [name, u] of updates) {
      let touched = false;
      if (u.service === null) touched = services.delete(name) || touched;
      else if (u.service) {
        services.set(name, u.service);
        touched = true;
      }
      if (u.rollout === null) touched = rollouts.delete(name) || touched;
      else if (u.rollout) {
        const before = rollouts.get(name);
        rollouts.set(name, u.rollout);
        touched = true;
        announced.push(u.rollout);
        if (u.rollout.phase === 'RolledBack' && before?.phase !== 'RolledBack') urgent = true;
      }
      if (touched) changed.push(name);
    }
    if (changed.length === 0) return;
    this.current = { revision: this.current.revision + 1, services, rollouts };
    this.emit('change', { state: this.current, services: changed, urgent });
    for (const r of announced) this.announce(r, 'remote');
  }

  private async readEverything(): Promise<void> {
    const snapshot = await snapshotOf(this.opts.store, STATE_PREFIXES);
    const changes: StoreChange[] = [];
    const seen = new Set<string>();
    for (const e of snapshot.entries) {
      seen.add(e.key);
      if ((this.known.get(e.key)?.revision ?? 0) < e.revision) changes.push({ key: e.key, revision: e.revision, value: e.value });
    }
    // Gone from the store: deleted at some revision up to the snapshot's.
    for (const [key, k] of this.known)
      if (k.present && !seen.has(key) && k.revision <= snapshot.revision) changes.push({ key, revision: snapshot.revision });
    changes.sort((a, b) => a.revision - b.revision);
    this.applyChanges(changes);
    if (snapshot.revision > this.received) this.received = snapshot.revision;
    if (this.pending.size > 0) this.scheduleRetry(0);
  }

  // ---- rollbacks waiting to be stored ----------------------------------------------------------

  /** Before another change of a service whose rollback is not stored: store it, or refuse (503). */
  private async settlePending(service: string): Promise<void> {
    if (!this.pending.has(service)) return;
    try {
      await this.persistPending(service);
    } catch (err) {
      throw new NotWritableError(err as Error);
    }
  }

  /**
   * Stores a published rollback (in the service's serial). Exactly what was published when the
   * store still holds what it was derived from; otherwise the rollback applied to what the
   * store holds now (another replica moved the rollout on), or, when that rollout is over or
   * gone, what the store holds, adopted as it is. Throws when the store cannot be reached.
   */
  private async persistPending(service: string): Promise<void> {
    const p = this.pending.get(service);
    if (!p) return;
    const rKey = rolloutKey(service);
    const sKey = serviceKey(service);
    this.hold([rKey, sKey]);
    try {
      try {
        const { revision } = await this.opts.store.commit(p.ops, p.expect);
        this.known.set(rKey, { revision, present: true });
        this.pending.delete(service);
        this.lastStoreError = undefined;
        this.opts.log.info({ service }, 'rolled-back state persisted');
        return;
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
      }
      const [storedRollout, storedService] = await Promise.all([this.opts.store.read(rKey), this.opts.store.read(sKey)]);
      const fresh = storedRollout && parseRollout(service, storedRollout.value);
      const declared = storedService && parseService(service, storedService.value);
      const freshService = typeof declared === 'object' ? declared : undefined;
      if (fresh && typeof fresh === 'object' && fresh.id === p.state.id && isActive(fresh)) {
        const { state } = transition(fresh, p.event, this.now(), p.by);
        const expect = { [rKey]: storedRollout.revision, [sKey]: storedService?.revision ?? 0 };
        const { revision } = await this.opts.store.commit([{ put: rKey, value: state }], expect);
        this.known.set(rKey, { revision, present: true });
        this.known.set(sKey, { revision: storedService?.revision ?? 0, present: !!storedService });
        this.pending.delete(service);
        this.lastStoreError = undefined;
        this.adopt(service, freshService, state, true);
        this.opts.log.info({ service }, 'rolled-back state persisted (applied to the rollout as another replica left it)');
        this.announce(state, 'local');
        return;
      }
      this.known.set(rKey, { revision: storedRollout?.revision ?? 0, present: !!storedRollout });
      this.known.set(sKey, { revision: storedService?.revision ?? 0, present: !!storedService });
      this.pending.delete(service);
      const stored = fresh && typeof fresh === 'object' ? fresh : undefined;
      this.adopt(service, freshService, stored, stored?.phase === 'RolledBack');
      if (!stored || stored.id !== p.state.id || stored.phase !== 'RolledBack')
        this.opts.log.error(
          { service, stored: stored ? { id: stored.id, phase: stored.phase } : null },
          'a rollback made while the store could not be written was not stored: meanwhile another replica finished, replaced or removed that rollout; serving what the store holds',
        );
      if (stored) this.announce(stored, 'remote');
    } finally {
      this.release([rKey, sKey]);
    }
  }

  private adopt(service: string, declared: NamedService | undefined, rollout: RolloutState | undefined, urgent: boolean): void {
    const next = withService(this.current, service, { service: declared ?? null, rollout: rollout ?? null });
    this.publish(next, [service], urgent);
  }

  private scheduleRetry(delay = this.retryDelay): void {
    if (this.closed || this.pending.size === 0) return;
    const at = Date.now() + delay;
    if (this.retryTimer && this.retryAt <= at) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retryPending();
    }, delay);
    this.retryTimer.unref();
  }

  private async retryPending(): Promise<void> {
    const services = [...this.pending.keys()];
    await Promise.all(
      services.map((s) =>
        this.serialOf(s)
          .run(() => this.persistPending(s))
          .catch((err: Error) => {
            this.lastStoreError = err;
          }),
      ),
    );
    if (this.pending.size === 0) {
      this.retryDelay = this.opts.retryMs ?? 250;
      return;
    }
    this.opts.log.warn({ err: this.lastStoreError?.message, services: [...this.pending.keys()] }, 'still cannot persist the rolled-back state');
    this.retryDelay = Math.min(MAX_RETRY_MS, this.retryDelay * 2);
    this.scheduleRetry();
  }
}

function keyOf(op: StoreOp): string {
  return 'put' in op ? op.put : op.delete;
}
