// The one writer of the desired state. Every change of a service — its declaration or its
// rollout — goes through one serialised path per service, so each check runs against the
// state it will be applied to. A change is checked against the whole resulting configuration,
// stored, and only then published (the 'change' event); services never wait for each other.
// The one exception to "stored before published" is safety: a rollback the store cannot take
// is published anyway, reported as not persisted, and its persistence retried until it lands.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { RolloutSpec, RolloutState } from '../model/rollout.js';
import type { NamedService, Service } from '../model/service.js';
import { hasVersion } from '../model/service.js';
import type { RolloutEvent } from '../rollout/machine.js';
import { createRollout, isActive, transition } from '../rollout/machine.js';
import type { Store, StoreOp } from '../store/store.js';
import { archiveKey, ARCHIVE_PREFIX, MAX_ARCHIVED, ROLLOUT_PREFIX, SERVICE_PREFIX } from './keys.js';
import { checkNames, checkRollouts } from './config-check.js';
import type { ConfigCheck, ConfigProblem, DesiredState } from './desired-state.js';
import { EMPTY_STATE, withService } from './desired-state.js';
import { ConflictError, InvalidFieldError, NotFoundError, NotPersistedError, NotWritableError } from './errors.js';
import { loadState } from './load.js';
import { Serial } from './serial.js';

export interface StateChange {
  readonly state: DesiredState;
  /** Services whose routing may have changed. */
  readonly services: readonly string[];
  /** A rollback: published at once, without the debounce that coalesces other changes. */
  readonly urgent: boolean;
}

export interface StateWriterOptions {
  store: Store;
  log: Logger;
  /** Checks that need translation (the reconciler's): a candidate must be publishable. */
  check?: ConfigCheck;
  now?: () => Date;
  /** First delay between attempts to persist a rollback the store refused (doubles up to 5 s). */
  retryMs?: number;
}

export interface PersistenceStatus {
  ok: boolean;
  store: { ok: boolean; message?: string };
  /** Services whose latest state is published but not yet stored. */
  unpersisted: string[];
}

type Events = { change: [StateChange]; rollout: [RolloutState] };

const MAX_RETRY_MS = 5000;

export class StateWriter extends EventEmitter<Events> {
  private current: DesiredState = EMPTY_STATE;
  private readonly serials = new Map<string, Serial>();
  /** Service declarations being written: other services' checks see them as taken. */
  private readonly inflight = new Map<string, NamedService | null>();
  /** Store ops that were published but not stored (a rollback on a broken disk), by key. */
  private readonly unpersisted = new Map<string, StoreOp>();
  private retryTimer?: NodeJS.Timeout;
  private retryDelay: number;
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

  /** Reads the store; whatever cannot be used is quarantined (and logged), never fatal. */
  async load(): Promise<void> {
    this.current = await loadState(this.opts.store, this.opts.log, this.opts.check);
    this.emit('change', { state: this.current, services: [...this.current.services.keys()], urgent: false });
  }

  persistence(): PersistenceStatus {
    const store = this.opts.store.health();
    const unpersisted = [...new Set([...this.unpersisted.keys()].map((k) => k.slice(k.indexOf('/') + 1).split('/')[0]!))].sort();
    return { ok: store.ok && unpersisted.length === 0, store, unpersisted };
  }

  /** Creates or replaces a service; returns whether it was created. */
  putService(name: string, spec: Service, by: string): Promise<{ service: NamedService; created: boolean }> {
    return this.serialOf(name).run(async () => {
      const service: NamedService = { name, ...spec };
      const created = !this.current.services.has(name);
      this.inflight.set(name, service);
      try {
        const candidate = withService(this.withInflight(name), name, { service });
        this.assertPublishable(candidate, name);
        await this.commit([{ put: SERVICE_PREFIX + name, value: service }], withService(this.current, name, { service }), [name], false);
      } finally {
        this.inflight.delete(name);
      }
      this.opts.log.info({ service: name, created, by }, 'service declared');
      return { service, created };
    });
  }

  /** Deletes a service without an active rollout; its finished rollout goes to the archive. */
  deleteService(name: string, by: string): Promise<void> {
    return this.serialOf(name).run(async () => {
      if (!this.current.services.has(name)) throw new NotFoundError(`service "${name}" not found`);
      const rollout = this.current.rollouts.get(name);
      if (rollout && isActive(rollout)) throw new ConflictError(`service "${name}" has an active rollout; roll it back or promote it first`, 'service');
      const ops: StoreOp[] = [{ delete: SERVICE_PREFIX + name }, ...(rollout ? await this.archiveOps(rollout) : [])];
      await this.commit(ops, withService(this.current, name, { service: null, rollout: rollout ? null : undefined }), [name], false);
      this.opts.log.info({ service: name, by }, 'service deleted');
    });
  }

  createRollout(spec: RolloutSpec, by: string): Promise<RolloutState> {
    return this.serialOf(spec.service).run(async () => {
      const service = this.current.services.get(spec.service);
      if (!service) throw new NotFoundError(`service "${spec.service}" not found`);
      if (!hasVersion(service, spec.canary))
        throw new InvalidFieldError('canary', `"${spec.canary}" is not a version of service "${spec.service}"`);
      if (spec.canary === service.stable)
        throw new InvalidFieldError('canary', `"${spec.canary}" is already the stable version of "${spec.service}"`);
      const previous = this.current.rollouts.get(spec.service);
      if (previous && isActive(previous))
        throw new ConflictError(`service "${spec.service}" already has an active rollout (${previous.phase})`, 'service');
      const state = createRollout(randomUUID(), spec, service.stable, this.now(), by);
      const candidate = withService(this.current, spec.service, { rollout: state });
      this.assertPublishable(candidate, spec.service);
      const ops: StoreOp[] = [...(previous ? await this.archiveOps(previous) : []), { put: ROLLOUT_PREFIX + spec.service, value: state }];
      await this.commit(ops, candidate, [spec.service], false);
      this.announce(state);
      return state;
    });
  }

  /** Applies an action or an event to a service's rollout. A promotion changes the service's
   *  stable version in the same atomic commit, so a restart can never apply it twice. */
  rolloutEvent(service: string, event: RolloutEvent, by: string): Promise<RolloutState> {
    return this.serialOf(service).run(async () => {
      const current = this.current.rollouts.get(service);
      if (!current) throw new NotFoundError(`no rollout for service "${service}"`);
      const { state, changed } = transition(current, event, this.now(), by);
      if (!changed) return current;
      const ops: StoreOp[] = [{ put: ROLLOUT_PREFIX + service, value: state }];
      let declared: NamedService | undefined;
      if (state.phase === 'Promoted' && current.phase !== 'Promoted') {
        const before = this.current.services.get(service);
        if (before && hasVersion(before, state.canary)) {
          declared = { ...before, stable: state.canary };
          ops.push({ put: SERVICE_PREFIX + service, value: declared });
        }
      }
      const candidate = withService(this.current, service, { rollout: state, service: declared });
      const urgent = state.phase === 'RolledBack';
      // A rollback only takes traffic away from the canary: it is never refused.
      if (!urgent) this.assertPublishable(candidate, service);
      try {
        await this.commit(ops, candidate, [service], urgent);
      } finally {
        // Published (stored, or a rollback the store refused): watchers hear of it either way.
        if (this.current.rollouts.get(service) === state) this.announce(state);
      }
      return state;
    });
  }

  /** Removes a finished rollout (it stays in the service's rollout archive). */
  deleteRollout(service: string, by: string): Promise<void> {
    return this.serialOf(service).run(async () => {
      const rollout = this.current.rollouts.get(service);
      if (!rollout) throw new NotFoundError(`no rollout for service "${service}"`);
      if (isActive(rollout)) throw new ConflictError(`the rollout of "${service}" is ${rollout.phase}; roll it back or promote it first`, 'service');
      await this.commit(await this.archiveOps(rollout), withService(this.current, service, { rollout: null }), [service], false);
      this.opts.log.info({ service, rollout: rollout.id, by }, 'rollout deleted (archived)');
    });
  }

  /** Past rollouts of a service, newest first (the current one is not included). */
  async archive(service: string): Promise<RolloutState[]> {
    const entries = await this.opts.store.entries<RolloutState>(`${ARCHIVE_PREFIX}${service}/`);
    return entries.map((e) => e.value).reverse();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private serialOf(service: string): Serial {
    let s = this.serials.get(service);
    if (!s) this.serials.set(service, (s = new Serial()));
    return s;
  }

  /** The current state with other services' declarations that are being written. */
  private withInflight(except: string): DesiredState {
    let state = this.current;
    for (const [name, service] of this.inflight) if (name !== except) state = withService(state, name, { service });
    return state;
  }

  private assertPublishable(candidate: DesiredState, service: string): void {
    const changed = [service];
    const problems: ConfigProblem[] = [...checkNames(candidate, changed), ...checkRollouts(candidate, changed)];
    if (problems.length === 0 && this.opts.check) problems.push(...this.opts.check(candidate, changed));
    const first = problems[0];
    if (first) throw new ConflictError(problems.map((p) => p.message).join('; '), first.field);
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

  /** Stores, then publishes. An urgent change (a rollback) is published even when the store
   *  refuses it; any other change is not applied at all. */
  private async commit(ops: StoreOp[], next: DesiredState, services: string[], urgent: boolean): Promise<void> {
    if (this.closed) throw new Error('the state writer is closed');
    // Keys waiting to be persisted ride along: this commit stores their latest value.
    const pending = [...this.unpersisted.entries()].filter(([key]) => !ops.some((op) => keyOf(op) === key)).map(([, op]) => op);
    try {
      await this.opts.store.commit([...pending, ...ops]);
      for (const op of [...pending, ...ops]) this.unpersisted.delete(keyOf(op));
    } catch (err) {
      if (!urgent) throw new NotWritableError(err as Error);
      this.publish(next, services, urgent);
      for (const op of ops) this.unpersisted.set(keyOf(op), op);
      this.opts.log.error({ err, services }, 'rollback published but not persisted; retrying');
      this.scheduleRetry();
      throw new NotPersistedError(next.rollouts.get(services[0]!) ?? null, err as Error);
    }
    this.publish(next, services, urgent);
  }

  private publish(next: DesiredState, services: string[], urgent: boolean): void {
    // `next` was built before the store answered, and other services may have published since:
    // take only this change's services from it, so nobody else's change is undone.
    let state = this.current;
    for (const name of services) state = withService(state, name, { service: next.services.get(name) ?? null, rollout: next.rollouts.get(name) ?? null });
    this.current = { ...state, revision: this.current.revision + 1 };
    this.emit('change', { state: this.current, services, urgent });
  }

  private announce(state: RolloutState): void {
    const last = state.history.at(-1);
    this.opts.log.info({ service: state.service, phase: state.phase, weights: state.weights, event: last?.event, by: last?.by, reason: last?.reason }, 'rollout changed');
    this.emit('rollout', state);
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retryPersistence();
    }, this.retryDelay);
    this.retryTimer.unref();
  }

  private async retryPersistence(): Promise<void> {
    const ops = [...this.unpersisted.values()];
    if (ops.length === 0) return;
    try {
      await this.opts.store.commit(ops);
      for (const op of ops) if (this.unpersisted.get(keyOf(op)) === op) this.unpersisted.delete(keyOf(op));
      this.retryDelay = this.opts.retryMs ?? 250;
      this.opts.log.info({ keys: ops.map(keyOf) }, 'rolled-back state persisted');
    } catch (err) {
      this.retryDelay = Math.min(MAX_RETRY_MS, this.retryDelay * 2);
      this.opts.log.warn({ err: (err as Error).message, keys: ops.map(keyOf) }, 'still cannot persist the rolled-back state');
    }
    if (this.unpersisted.size > 0) this.scheduleRetry();
  }
}

function keyOf(op: StoreOp): string {
  return 'put' in op ? op.put : op.delete;
}
