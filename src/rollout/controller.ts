// Drives rollouts: every transition is stored before it is pushed, timers fire timed pauses,
// a weight step completes when the fleet has ACKed the routes that carry it, and analysis runs
// are measured when their windows close.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ServiceRegistry } from '../control/services.js';
import { ConflictError, NotFoundError } from '../control/services.js';
import { Serial } from '../control/serial.js';
import type { AnalysisSpec, Measurement, RolloutSpec, RolloutState } from '../model/rollout.js';
import type { Service } from '../model/service.js';
import type { Store } from '../store/store.js';
import type { Routing } from '../translate/routing.js';
import { stableRouting } from '../translate/routing.js';
import type { NodeConvergence } from '../xds/server.js';
import type { RolloutEvent } from './machine.js';
import { analysisDue, createRollout, isActive, nextWakeAt, transition } from './machine.js';

export interface FleetSync {
  /** Resolves when every connected node holds the current routes, or at the timeout. */
  awaitRoutes(timeoutMs: number): Promise<NodeConvergence[]>;
}

/** Measures analysis windows (src/analysis/analyzer.ts). */
export interface RolloutAnalyzer {
  /** A window of a run started at `startedAt` may not close before this. */
  earliestClose(spec: AnalysisSpec, startedAt: Date): Date;
  /** Judges the window of `run` that closes at `to`; never throws for a metric's sake. */
  measure(state: RolloutState, run: string, spec: AnalysisSpec, to: Date): Promise<Measurement>;
}

export interface RolloutControllerOptions {
  store: Store;
  services: ServiceRegistry;
  fleet: FleetSync;
  log: Logger;
  /** Publishes the current routing; resolves once the xDS cache holds it. */
  publish(urgent: boolean): Promise<void>;
  /** Without one, analysis runs are never measured (and analysis steps never complete). */
  analyzer?: RolloutAnalyzer;
  now?: () => Date;
}

export class InvalidRolloutError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const ACK_WAIT_MS = 10_000;
const RETRY_AFTER_REJECT_MS = 1000;
const RETRY_MEASUREMENT_MS = 1000;

export class RolloutController extends EventEmitter<{ change: [RolloutState] }> {
  private readonly rollouts = new Map<string, RolloutState>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** By service and run: the window close the timer is for (kept until its measurement is applied). */
  private readonly analysisTimers = new Map<string, { to: number; timer: NodeJS.Timeout }>();
  private readonly watching = new Set<string>();
  /** Changes to one service's rollout apply in order; services do not wait for each other,
   *  so a rollback never queues behind another service's commits. */
  private readonly serials = new Map<string, Serial>();
  private closed = false;
  private readonly now: () => Date;

  constructor(private readonly opts: RolloutControllerOptions) {
    super();
    this.setMaxListeners(0);
    this.now = opts.now ?? (() => new Date());
    opts.services.setGuard((name, next) => this.guardService(name, next));
  }

  /** Loads stored rollouts, finishes an interrupted promotion, and re-arms timers and ACK waits. */
  async load(): Promise<void> {
    for (const { value } of await this.opts.store.list<RolloutState>('rollouts/')) this.rollouts.set(value.service, value);
    for (const r of this.rollouts.values()) {
      if (r.phase === 'Promoted') await this.finishPromotion(r);
    }
  }

  /** Arms timers and fleet watches for active rollouts (after the first publish). */
  start(): void {
    for (const r of this.rollouts.values()) this.arm(r);
  }

  list(): RolloutState[] {
    return [...this.rollouts.values()].sort((a, b) => (a.service < b.service ? -1 : 1));
  }

  get(service: string): RolloutState | undefined {
    return this.rollouts.get(service);
  }

  /** The routing every service should have now: its rollout's split, or 100% stable. */
  routings(): Routing[] {
    return this.opts.services.list().map((service) => {
      const r = this.rollouts.get(service.name);
      if (!r || !isActive(r)) return stableRouting(service);
      const split = [
        { version: r.canary, weight: r.canaryWeight },
        { version: r.stable, weight: 100 - r.canaryWeight },
      ].filter((s) => s.weight > 0);
      return {
        service,
        split,
        headerRoutes: r.headerRoutesActive
          ? (r.spec.headerRoutes ?? []).map((h) => ({ name: h.name, match: h.match, version: r.canary }))
          : [],
        ...(r.spec.sticky ? { sticky: r.spec.sticky } : {}),
      } satisfies Routing;
    });
  }

  private serialOf(service: string): Serial {
    let s = this.serials.get(service);
    if (!s) this.serials.set(service, (s = new Serial()));
    return s;
  }

  create(spec: RolloutSpec, by: string): Promise<RolloutState> {
    return this.serialOf(spec.service).run(async () => {
      const service = this.opts.services.get(spec.service);
      if (!service) throw new NotFoundError(`service "${spec.service}" not found`);
      if (!(spec.canary in service.versions))
        throw new InvalidRolloutError('canary', `"${spec.canary}" is not a version of service "${spec.service}"`);
      if (spec.canary === service.stable)
        throw new InvalidRolloutError('canary', `"${spec.canary}" is already the stable version of "${spec.service}"`);
      const current = this.rollouts.get(spec.service);
      if (current && isActive(current))
        throw new ConflictError(`service "${spec.service}" already has an active rollout (${current.phase})`, 'service');
      const state = createRollout(randomUUID(), spec, service.stable, this.now(), by);
      await this.commit(state, false);
      return state;
    });
  }

  /** Applies an action or an event; rollbacks (by hand or by analysis) are pushed without any debounce. */
  act(service: string, event: RolloutEvent, by: string): Promise<RolloutState> {
    return this.serialOf(service).run(async () => {
      const current = this.rollouts.get(service);
      if (!current) throw new NotFoundError(`no rollout for service "${service}"`);
      const { state, changed } = transition(current, event, this.now(), by);
      if (changed) await this.commit(state, state.phase === 'RolledBack');
      return state;
    });
  }

  /** Waits until every connected node holds the current routes (used by rollback ?wait=ack). */
  awaitFleet(timeoutMs: number): Promise<NodeConvergence[]> {
    return this.opts.fleet.awaitRoutes(timeoutMs);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const t of this.analysisTimers.values()) clearTimeout(t.timer);
    this.analysisTimers.clear();
  }

  /** Store first (a crash loses nothing acknowledged), then push, then tell watchers. */
  private async commit(state: RolloutState, urgent: boolean): Promise<void> {
    await this.opts.store.put(`rollouts/${state.service}`, state);
    this.rollouts.set(state.service, state);
    if (state.phase === 'Promoted') await this.finishPromotion(state);
    await this.opts.publish(urgent);
    const last = state.history[state.history.length - 1];
    this.opts.log.info(
      { service: state.service, phase: state.phase, weights: state.weights, event: last?.event, by: last?.by, reason: last?.reason },
      'rollout changed',
    );
    this.emit('change', state);
    this.arm(state);
  }

  /** After promotion the canary is the service's stable version. */
  private async finishPromotion(state: RolloutState): Promise<void> {
    const service = this.opts.services.get(state.service);
    if (!service || service.stable === state.canary || !(state.canary in service.versions)) return;
    const { name: _name, ...spec } = service;
    await this.opts.services.put(state.service, { ...spec, stable: state.canary });
  }

  private arm(state: RolloutState): void {
    if (this.closed) return;
    this.armAnalysis(state);
    const old = this.timers.get(state.service);
    if (old) clearTimeout(old);
    this.timers.delete(state.service);
    if (!isActive(state)) return;
    const wake = nextWakeAt(state);
    if (wake) {
      const delay = Math.max(0, wake.getTime() - this.now().getTime());
      const timer = setTimeout(() => {
        this.timers.delete(state.service);
        this.act(state.service, { type: 'tick' }, 'schedule').catch((err) =>
          this.opts.log.error({ err, service: state.service }, 'rollout tick failed'),
        );
      }, delay);
      timer.unref();
      this.timers.set(state.service, timer);
    }
    if (state.awaitingAck && !this.watching.has(state.service)) void this.watchFleet(state.service);
  }

  /** One timer per analysis run, at the close of its next window. */
  private armAnalysis(state: RolloutState): void {
    const analyzer = this.opts.analyzer;
    const due = analyzer ? analysisDue(state) : [];
    const prefix = `${state.service}\0`;
    for (const [key, t] of this.analysisTimers)
      if (key.startsWith(prefix) && !due.some((d) => prefix + d.run === key)) {
        clearTimeout(t.timer);
        this.analysisTimers.delete(key);
      }
    for (const { run, at, spec, startedAt } of due) {
      const key = prefix + run;
      const to = Math.max(at.getTime(), analyzer!.earliestClose(spec, startedAt).getTime());
      const armed = this.analysisTimers.get(key);
      if (armed?.to === to) continue; // armed, or being measured
      if (armed) clearTimeout(armed.timer);
      const timer = setTimeout(() => void this.measure(state.service, run, key, to), Math.max(0, to - this.now().getTime()));
      timer.unref();
      this.analysisTimers.set(key, { to, timer });
    }
  }

  /** Measures a closed window and feeds it to the machine, which decides what it means. */
  private async measure(service: string, run: string, key: string, to: number): Promise<void> {
    let failed = false;
    try {
      const current = this.rollouts.get(service);
      const due = current && analysisDue(current).find((d) => d.run === run);
      if (!current || !due) return;
      const measurement = await this.opts.analyzer!.measure(current, run, due.spec, new Date(to));
      if (this.closed) return;
      await this.act(service, { type: 'analysisMeasured', measurement }, 'analysis');
    } catch (err) {
      failed = true;
      this.opts.log.error({ err, service, run }, 'analysis measurement failed');
    } finally {
      // Applying the measurement re-armed the run for its next window; otherwise nothing is due.
      if (this.analysisTimers.get(key)?.to === to) this.analysisTimers.delete(key);
    }
    if (failed)
      setTimeout(() => {
        const r = this.rollouts.get(service);
        if (r && !this.closed) this.armAnalysis(r);
      }, RETRY_MEASUREMENT_MS).unref();
  }

  /** Reports `fleetAcked` once every connected node holds the routes with the awaited weight. */
  private async watchFleet(service: string): Promise<void> {
    this.watching.add(service);
    try {
      for (;;) {
        const r = this.rollouts.get(service);
        if (this.closed || !r || !isActive(r) || !r.awaitingAck) return;
        const weight = r.awaitingAck.canaryWeight;
        const nodes = await this.opts.fleet.awaitRoutes(ACK_WAIT_MS);
        if (this.closed) return;
        const behind = nodes.filter((n) => n.state === 'pending' || n.state === 'rejected');
        if (behind.length === 0) {
          await this.act(service, { type: 'fleetAcked', canaryWeight: weight }, 'fleet');
          continue;
        }
        this.opts.log.warn({ service, weight, behind }, 'fleet has not acknowledged the rollout weight yet');
        const rejected = behind.filter((n) => n.state === 'rejected');
        if (rejected.length > 0) {
          // A NACK is a first-class signal: the schedule stops until a human decides.
          const message = rejected[0]!.message ?? 'rejected';
          await this.act(service, { type: 'fleetRejected', canaryWeight: weight, nodes: [...new Set(rejected.map((n) => n.node))], message }, 'fleet');
          await new Promise((res) => setTimeout(res, RETRY_AFTER_REJECT_MS));
        }
      }
    } catch (err) {
      this.opts.log.error({ err, service }, 'fleet watch failed');
    } finally {
      this.watching.delete(service);
    }
  }

  /** While a rollout is active its stable and canary versions must stay, and so must the service. */
  private guardService(name: string, next: Service | null): void {
    const r = this.rollouts.get(name);
    if (!r || !isActive(r)) return;
    if (!next) throw new ConflictError(`service "${name}" has an active rollout; roll it back or promote it first`);
    for (const v of [r.stable, r.canary])
      if (!(v in next.versions))
        throw new ConflictError(`version "${v}" is in an active rollout and cannot be removed`, `versions.${v}`);
    if (next.stable !== r.stable)
      throw new ConflictError(`stable is "${r.stable}" while a rollout runs; promote or roll back instead`, 'stable');
  }
}
