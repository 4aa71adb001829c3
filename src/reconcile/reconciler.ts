// Desired state in, cache contents out. Takes each new snapshot of the desired state, has every
// service translated for every kind of client, and sets the cache groups: each kind's own group
// (every service) and the scoped groups nodes use (a kind narrowed to some services). Bursts
// are coalesced; an urgent change (a rollback) is published at once. One service that cannot
// be translated, or whose resources clash with another's, keeps its last good resources (or is
// left out) and is reported; it never stops the others from publishing.
import type { Logger } from 'pino';
import type { ConfigProblem, DesiredState } from '../state/desired-state.js';
import type { StateChange } from '../state/writer.js';
import type { ClientKind, ServicePart } from '../translate/client-kind.js';
import type { Translator } from '../translate/translate.js';
import type { ResourceCache } from '../xds/cache.js';
import type { NodeGroups } from './node-groups.js';
import { inScope } from './node-groups.js';
import { routingOf } from './routing-of.js';

export interface ReconcilerOptions {
  cache: ResourceCache;
  translator: Translator;
  /** What each cache group serves (kind, and the services it is scoped to). */
  groups: NodeGroups;
  log: Logger;
  debounceMs?: number;
}

export class Reconciler {
  private latest?: DesiredState;
  private timer?: NodeJS.Timeout;
  private publishedRevision = 0;
  private waiters: { revision: number; resolve: () => void }[] = [];
  /** Services that could not be published as declared, and why. */
  private readonly errors = new Map<string, string>();
  /** Per kind: the last part of each service that was published. */
  private readonly lastGood = new Map<string, Map<string, ServicePart>>();
  /** Per kind: the parts of the latest publish (scoped groups are assembled from them). */
  private readonly published = new Map<string, ServicePart[]>();
  /** Groups with nodes (besides the kinds' own groups, which are always published). */
  private readonly active = new Set<string>();
  private readonly debounceMs: number;

  constructor(private readonly opts: ReconcilerOptions) {
    this.debounceMs = opts.debounceMs ?? 20;
    for (const k of opts.translator.kinds) this.lastGood.set(k.name, new Map());
  }

  /** A new desired state: published soon (coalescing bursts), or now when urgent. */
  apply(change: StateChange): void {
    this.latest = change.state;
    if (change.urgent) this.publishNow();
    else this.timer ??= setTimeout(() => this.publishNow(), this.debounceMs);
  }

  /** Resolves once the cache holds a state at least as new as `revision`. */
  whenPublished(revision: number): Promise<void> {
    if (this.publishedRevision >= revision) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ revision, resolve }));
  }

  /** Whether the candidate's changed services translate for every kind of client. */
  check(candidate: DesiredState, changed: readonly string[]): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    for (const name of changed) {
      const service = candidate.services.get(name);
      if (!service) continue;
      for (const kind of this.opts.translator.kinds) {
        try {
          this.opts.translator.part(kind, routingOf(service, candidate.rollouts.get(name)));
        } catch (err) {
          problems.push({ service: name, field: '(body)', message: `service "${name}" cannot be translated for ${kind.name} clients: ${(err as Error).message}` });
        }
      }
    }
    return problems;
  }

  /** Services published with problems (last good resources kept, or left out), and why. */
  serviceErrors(): ReadonlyMap<string, string> {
    return this.errors;
  }

  publishNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const state = this.latest;
    if (!state) return;
    const { translator, log } = this.opts;
    const names = [...state.services.keys()].sort();
    const errors = new Map<string, string>();
    for (const kind of translator.kinds) this.published.set(kind.name, this.partsOf(kind, state, names, errors));
    translator.forgetAllBut(new Set(names));
    for (const group of this.groupsToPublish()) this.publishGroup(group);
    for (const [name, message] of errors) if (this.errors.get(name) !== message) log.error({ service: name, problem: message }, 'service not published as declared');
    this.errors.clear();
    for (const [k, v] of errors) this.errors.set(k, v);
    this.publishedRevision = state.revision;
    const ready = this.waiters.filter((w) => w.revision <= state.revision);
    this.waiters = this.waiters.filter((w) => w.revision > state.revision);
    for (const w of ready) w.resolve();
  }

  /** A group got its first node: it gets its configuration before its first response. */
  activate(group: string): void {
    this.active.add(group);
    this.publishGroup(group);
  }

  /** A group's last node left: nothing keeps its configuration. */
  deactivate(group: string): void {
    if (!this.active.delete(group) || this.opts.groups.spec(group)?.services === '*') return;
    this.opts.cache.drop(group);
    this.opts.groups.forget(group);
  }

  /** Every service's part for one kind; a service that fails keeps its last good part, and one
   *  whose names clash with another's is left out (the one that had them first keeps them). */
  private partsOf(kind: ClientKind, state: DesiredState, names: string[], errors: Map<string, string>): ServicePart[] {
    const good = this.lastGood.get(kind.name)!;
    const owners = new Map<string, string>();
    const parts: ServicePart[] = [];
    // Services that already own a name publish first, so a clash never evicts the innocent.
    const ordered = [...names].sort((a, b) => Number(!good.has(a)) - Number(!good.has(b)));
    for (const name of ordered) {
      let part: ServicePart | undefined;
      try {
        part = this.opts.translator.part(kind, routingOf(state.services.get(name)!, state.rollouts.get(name)));
      } catch (err) {
        errors.set(name, `cannot be translated for ${kind.name} clients (its last good resources stay): ${(err as Error).message}`);
        part = good.get(name);
      }
      if (!part) continue;
      const clash = part.resources.find((r) => {
        const owner = owners.get(`${r.typeUrl}\0${r.name}`);
        return owner !== undefined && owner !== name;
      });
      if (clash) {
        errors.set(name, `not published to ${kind.name} clients: resource "${clash.name}" is also served by service "${owners.get(`${clash.typeUrl}\0${clash.name}`)}"`);
        continue;
      }
      for (const r of part.resources) owners.set(`${r.typeUrl}\0${r.name}`, name);
      good.set(name, part);
      parts.push(part);
    }
    for (const name of good.keys()) if (!state.services.has(name)) good.delete(name);
    return parts;
  }

  /** The kinds' own groups (every service) always, scoped groups while a node uses them. */
  private groupsToPublish(): string[] {
    return [...new Set([...this.opts.translator.kinds.map((k) => k.name), ...this.active])];
  }

  private publishGroup(group: string): void {
    const spec = this.opts.groups.spec(group);
    const kind = spec && this.opts.translator.kinds.find((k) => k.name === spec.kind);
    const parts = kind && this.published.get(kind.name);
    if (!spec || !kind || !parts) return;
    try {
      this.opts.cache.set(group, kind.assemble(spec.services === '*' ? parts : parts.filter((p) => inScope(spec.services, p.service))));
    } catch (err) {
      this.opts.log.error({ err, group }, 'publish failed');
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w.resolve();
  }
}
