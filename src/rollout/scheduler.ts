// Moves rollouts along by themselves: timers end timed pauses, a weight step completes when the
// service's own nodes have ACKed the routes that carry it, and analysis windows are measured
// when they close. Every decision is an event handed to the state writer, which stores and
// publishes it; the scheduler only watches the desired state and the fleet.
import type { Logger } from 'pino';
import { parseDuration } from '../model/duration.js';
import type { AnalysisSpec, Measurement, RolloutState } from '../model/rollout.js';
import type { RolloutEvent } from './machine.js';
import { analysisDue, isActive, mirrorOf, nextWakeAt } from './machine.js';

/** One node's (one stream's) answer to the routes of a service. */
export interface NodeConvergence {
  node: string;
  stream: number;
  state: 'acked' | 'pending' | 'rejected' | 'disconnected';
  /** Milliseconds from the start of the wait until the node answered. */
  ms: number | null;
  message?: string;
  /** The kind of client (`envoy` mirrors; proxyless gRPC clients cannot), when known. */
  kind?: string;
  /** The replica the node is connected to (with several replicas). */
  replica?: string;
}

/** The fleet as a rollout sees it: only the nodes that hold the service's resources. */
export interface ServiceFleet {
  /** Resolves when every node of the service holds its current routes or rejected them (and,
   *  with minNodes, at least that many nodes ACKed), or at the timeout. */
  awaitService(service: string, opts: { timeoutMs: number; minNodes?: number }): Promise<NodeConvergence[]>;
}

/** Where changes are applied (the state writer), and what it holds now. */
export interface RolloutSink {
  readonly state: { readonly revision: number; readonly rollouts: ReadonlyMap<string, RolloutState> };
  rolloutEvent(service: string, event: RolloutEvent, by: string): Promise<RolloutState>;
}

/** Measures analysis windows (src/analysis/analyzer.ts). */
export interface RolloutAnalyzer {
  /** A window of a run started at `startedAt` may not close before this. */
  earliestClose(spec: AnalysisSpec, startedAt: Date): Date;
  /** Judges the window of `run` that closes at `to`; never throws for a metric's sake. */
  measure(state: RolloutState, run: string, spec: AnalysisSpec, to: Date): Promise<Measurement>;
}

export interface SchedulerOptions {
  sink: RolloutSink;
  fleet: ServiceFleet;
  /** Resolves once the cache holds a desired state at least as new as `revision`. */
  published(revision: number): Promise<void>;
  log: Logger;
  /** Without one, analysis runs are never measured (and analysis steps never complete). */
  analyzer?: RolloutAnalyzer;
  now?: () => Date;
  /** Whether it schedules from the start (default true). With several replicas only the
   *  elected leader does: start() and suspend() follow the leadership. */
  active?: boolean;
}

/** How long one fleet wait may take before the watch looks again (e.g. for a NACK while another
 *  node stays silent); a wait settles earlier as soon as every node of the service answered. */
const ACK_POLL_MS = 1000;
const WARN_EVERY_MS = 10_000;
const RETRY_AFTER_REJECT_MS = 1000;
/** After a tick that found its pause not over yet (it fired early): when to look again. */
const TICK_AGAIN_MS = 10;
const RETRY_MEASUREMENT_MS = 1000;

export class RolloutScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** By service and run: the window close the timer is for (kept until its measurement is applied). */
  private readonly analysisTimers = new Map<string, { to: number; timer: NodeJS.Timeout }>();
  /** By rollout id and run: the last window measured. A paused rollout ignores most measurements,
   *  so its stored schedule does not move; this keeps the next window after the last one. */
  private readonly measuredTo = new Map<string, number>();
  private readonly watching = new Set<string>();
  private closed = false;
  private active: boolean;
  private readonly now: () => Date;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? (() => new Date());
    this.active = opts.active ?? true;
  }

  /** Whether this scheduler advances rollouts (on the leader replica). */
  get scheduling(): boolean {
    return this.active && !this.closed;
  }

  /** Arms timers and fleet watches for every active rollout (after loading, or when elected).
   *  Deadlines are absolute (in the rollout's state), so a pause that ended while nobody
   *  scheduled ends at once, and one still running ends when it was due. */
  start(): void {
    this.active = true;
    for (const r of this.opts.sink.state.rollouts.values()) this.arm(r);
  }

  /** Stops scheduling (leadership lost); waits for the fleet (?wait=ack) still work. */
  suspend(): void {
    this.active = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const t of this.analysisTimers.values()) clearTimeout(t.timer);
    this.analysisTimers.clear();
  }

  /** The desired state changed for these services: re-arm what they wait for. */
  onChange(services: readonly string[]): void {
    if (!this.active) return;
    for (const s of services) {
      const r = this.opts.sink.state.rollouts.get(s);
      if (r) this.arm(r);
      else this.disarm(s);
    }
  }

  /** Waits until the service's nodes hold its current routes (rollback ?wait=ack). */
  async awaitFleet(service: string, timeoutMs: number): Promise<NodeConvergence[]> {
    await this.opts.published(this.opts.sink.state.revision);
    return this.opts.fleet.awaitService(service, { timeoutMs });
  }

  close(): void {
    this.closed = true;
    this.suspend();
  }

  private act(service: string, event: RolloutEvent, by: string): Promise<RolloutState> {
    return this.opts.sink.rolloutEvent(service, event, by);
  }

  private disarm(service: string): void {
    const t = this.timers.get(service);
    if (t) clearTimeout(t);
    this.timers.delete(service);
    for (const [key, a] of this.analysisTimers)
      if (key.startsWith(`${service}\0`)) {
        clearTimeout(a.timer);
        this.analysisTimers.delete(key);
      }
  }

  /** Arms the service's current rollout again unless a change already did. */
  private rearm(service: string, minDelayMs: number): void {
    const r = this.opts.sink.state.rollouts.get(service);
    if (r && !this.timers.has(service)) this.arm(r, minDelayMs);
  }

  private arm(state: RolloutState, minDelayMs = 0): void {
    if (this.closed || !this.active) return;
    this.armAnalysis(state);
    const old = this.timers.get(state.service);
    if (old) clearTimeout(old);
    this.timers.delete(state.service);
    if (!isActive(state)) {
      for (const key of this.measuredTo.keys()) if (key.startsWith(`${state.id}\0`)) this.measuredTo.delete(key);
      return;
    }
    const wake = nextWakeAt(state);
    if (wake) {
      const delay = Math.max(minDelayMs, wake.getTime() - this.now().getTime());
      const timer = setTimeout(() => {
        this.timers.delete(state.service);
        this.act(state.service, { type: 'tick' }, 'schedule').then(
          // A tick that changed nothing re-arms nobody: Node arms timers from the event loop's
          // cached clock, so on a busy loop one fires a little before its wall-clock deadline and
          // the machine sees the pause still running. Look again shortly, or the pause never ends.
          () => this.rearm(state.service, TICK_AGAIN_MS),
          (err) => {
            this.opts.log.error({ err, service: state.service }, 'rollout tick failed; trying again');
            this.rearm(state.service, RETRY_AFTER_REJECT_MS);
          },
        );
      }, delay);
      timer.unref();
      this.timers.set(state.service, timer);
    }
    if (state.awaitingAck && !this.watching.has(state.service)) void this.watchFleet(state.service);
  }

  /** One timer per analysis run, at the close of its next window. */
  private armAnalysis(state: RolloutState): void {
    if (this.closed || !this.active) return;
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
      const after = (this.measuredTo.get(`${state.id}\0${run}`) ?? 0) + parseDuration(spec.interval);
      const to = Math.max(at.getTime(), after, analyzer!.earliestClose(spec, startedAt).getTime());
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
      const current = this.opts.sink.state.rollouts.get(service);
      const due = current && analysisDue(current).find((d) => d.run === run);
      if (!current || !due) return;
      const measurement = await this.opts.analyzer!.measure(current, run, due.spec, new Date(to));
      if (this.closed || !this.active) return;
      this.measuredTo.set(`${current.id}\0${run}`, to);
      await this.act(service, { type: 'analysisMeasured', measurement }, 'analysis');
    } catch (err) {
      failed = true;
      this.opts.log.error({ err, service, run }, 'analysis measurement failed');
    } finally {
      if (this.analysisTimers.get(key)?.to === to) this.analysisTimers.delete(key);
    }
    const r = this.opts.sink.state.rollouts.get(service);
    if (!r || this.closed || !this.active) return;
    // Applying the measurement re-armed the run through the change; when the machine ignored
    // it (paused), nothing changed, so arm the next window here.
    if (failed) setTimeout(() => this.armAnalysis(this.opts.sink.state.rollouts.get(service) ?? r), RETRY_MEASUREMENT_MS).unref();
    else this.armAnalysis(r);
  }

  /** Reports `fleetAcked` once the service's nodes hold the routes with the awaited weight and
   *  mirror share, and `fleetRejected` as soon as one of them NACKs them (even while others are
   *  still silent). */
  private async watchFleet(service: string): Promise<void> {
    this.watching.add(service);
    let warnedAt = Date.now();
    try {
      for (;;) {
        const r = this.opts.sink.state.rollouts.get(service);
        if (this.closed || !this.active || !r || !isActive(r) || !r.awaitingAck) return;
        const weight = r.awaitingAck.canaryWeight;
        const mirrorPercent = r.awaitingAck.mirrorPercent ?? 0;
        await this.opts.published(this.opts.sink.state.revision);
        const nodes = await this.opts.fleet.awaitService(service, { timeoutMs: ACK_POLL_MS, minNodes: r.spec.minNodes });
        const now = this.opts.sink.state.rollouts.get(service);
        if (this.closed || !this.active || !now || !isActive(now) || now.canaryWeight !== weight || mirrorOf(now) !== mirrorPercent) continue;
        const routing = { canaryWeight: weight, ...(mirrorPercent > 0 ? { mirrorPercent } : {}) };
        const behind = nodes.filter((n) => n.state === 'pending' || n.state === 'rejected');
        const ackedNodes = nodes.filter((n) => n.state === 'acked');
        const acked = new Set(ackedNodes.map((n) => n.node)).size;
        if (behind.length === 0 && acked >= (r.spec.minNodes ?? 0)) {
          // Only Envoys mirror: history says how many of the service's nodes are Envoys.
          const envoyNodes = ackedNodes.every((n) => n.kind !== undefined) ? new Set(ackedNodes.filter((n) => n.kind === 'envoy').map((n) => n.node)).size : undefined;
          await this.act(service, { type: 'fleetAcked', ...routing, nodes: acked, ...(envoyNodes === undefined ? {} : { envoyNodes }) }, 'fleet');
          continue;
        }
        const rejected = behind.filter((n) => n.state === 'rejected');
        if (rejected.length > 0 && now.phase === 'Progressing') {
          // A NACK is a first-class signal: the schedule stops until a human decides.
          const message = rejected[0]!.message ?? 'rejected';
          await this.act(service, { type: 'fleetRejected', ...routing, nodes: [...new Set(rejected.map((n) => n.node))], message }, 'fleet');
          await new Promise((res) => setTimeout(res, RETRY_AFTER_REJECT_MS));
        }
        if (Date.now() - warnedAt >= WARN_EVERY_MS) {
          warnedAt = Date.now();
          this.opts.log.warn({ service, weight, acked, minNodes: r.spec.minNodes, behind: behind.slice(0, 20) }, "the service's nodes have not acknowledged the rollout weight yet");
        }
      }
    } catch (err) {
      this.opts.log.error({ err, service }, 'fleet watch failed');
    } finally {
      this.watching.delete(service);
    }
  }
}
