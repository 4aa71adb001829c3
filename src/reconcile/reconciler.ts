// Desired state in, cache contents out. Takes each new snapshot of the desired state, has the
// services that changed translated for every kind of client, and patches the cache groups: each
// kind's own group (every service) and the scoped groups nodes use (a kind narrowed to some
// services), one group per turn of the event loop. A publish costs work in what changed, not in
// how many services there are (a kind's shared resources aside: Envoy's single route
// configuration is rebuilt whenever a service's part of it changes). A change is published at
// once, and the rest of a burst coalesced into one publish after it; an urgent change (a
// rollback) is always published at once.
// One service that cannot be translated, or whose resources clash with another's, keeps its last
// good resources (or is left out) and is reported; it never stops the others from publishing.
import type { Logger } from 'pino';
import type { RolloutState } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';
import type { ConfigProblem, DesiredState } from '../state/desired-state.js';
import type { StateChange } from '../state/writer.js';
import type { ClientKind, ServicePart } from '../translate/client-kind.js';
import type { Routing } from '../translate/routing.js';
import type { Translator } from '../translate/translate.js';
import type { ResourceCache } from '../xds/cache.js';
import type { Resource } from '../xds/resource.js';
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

/** Per kind: the part of each service published, and which service each resource name is served for. */
interface KindState {
  readonly kind: ClientKind;
  readonly parts: Map<string, ServicePart>;
  /** `typeUrl\0name` → the service whose part serves it (a name belongs to one service). */
  readonly owners: Map<string, string>;
}

/** What a cache group holds: the parts it was last given, and its shared resources. */
interface GroupState {
  readonly parts: Map<string, ServicePart>;
  shared: readonly Resource[];
}

const resourceKey = (r: Resource) => `${r.typeUrl}\0${r.name}`;

export class Reconciler {
  private latest?: DesiredState;
  /** The state last published, and the services changed since (null: look at every service). */
  private publishedState?: DesiredState;
  private dirty: Set<string> | null = null;
  /** Open for debounceMs after each publish: changes that arrive meanwhile are coalesced into
   *  one publish when it closes (`trailing`). */
  private window?: NodeJS.Timeout;
  private trailing = false;
  private publishedRevision = 0;
  private waiters: { revision: number; resolve: () => void }[] = [];
  /** Services that could not be published as declared, and why. */
  private readonly errors = new Map<string, string>();
  private readonly kinds = new Map<string, KindState>();
  /** Per service: the routing of the service and rollout objects it was made from. Snapshots
   *  share the objects of unchanged services, so an unchanged service is recognised at once. */
  private readonly routings = new Map<string, { service: NamedService; rollout: RolloutState | undefined; routing: Routing }>();
  /** Service names in order, kept while the set of services stays the same. */
  private sortedNames: string[] = [];
  private readonly groupStates = new Map<string, GroupState>();
  /** Groups with nodes (besides the kinds' own groups, which are always published). */
  private readonly active = new Set<string>();
  /** Groups still to bring up to date, with the services whose parts changed for them, and the
   *  revision they are brought to. */
  private readonly pending = new Map<string, Set<string>>();
  private pendingRevision = 0;
  private flushing?: NodeJS.Immediate;
  private readonly debounceMs: number;

  constructor(private readonly opts: ReconcilerOptions) {
    this.debounceMs = opts.debounceMs ?? 20;
    for (const kind of opts.translator.kinds) this.kinds.set(kind.name, { kind, parts: new Map(), owners: new Map() });
  }

  /**
   * A new desired state: published now when urgent, or when nothing was published in the last
   * debounceMs (a lone change, such as a promote, waits for nothing); otherwise coalesced with the
   * others of the burst into one publish when the window closes.
   */
  apply(change: StateChange): void {
    this.latest = change.state;
    if (this.dirty) for (const name of change.services) this.dirty.add(name);
    if (change.urgent || !this.window) this.publishNow();
    else this.trailing = true;
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
          this.opts.translator.part(kind, this.routingOf(name, service, candidate.rollouts.get(name)));
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
    const state = this.latest;
    if (!state) return;
    this.openWindow();
    const first = !this.publishedState;
    const changed = this.changedServices(state);
    this.publishedState = state;
    this.dirty = new Set();
    if (changed.length > 0 || first) {
      const errors = new Map<string, string>();
      const partsChanged = new Set<string>();
      for (const ks of this.kinds.values()) this.updateParts(ks, state, changed, errors, partsChanged);
      const gone = changed.filter((name) => !state.services.has(name));
      this.opts.translator.forget(gone);
      for (const name of gone) this.routings.delete(name);
      for (const name of changed) {
        const message = errors.get(name);
        if (message === undefined) this.errors.delete(name);
        else if (this.errors.get(name) !== message) {
          this.errors.set(name, message);
          this.opts.log.error({ service: name, problem: message }, 'service not published as declared');
        }
      }
      if (gone.length > 0 || this.sortedNames.length !== state.services.size) this.sortedNames = [...state.services.keys()].sort();
      for (const group of this.groupsToPublish()) {
        const set = this.pending.get(group);
        if (set) for (const name of partsChanged) set.add(name);
        else this.pending.set(group, new Set(partsChanged));
      }
    }
    this.pendingRevision = state.revision;
    this.flush();
  }

  private openWindow(): void {
    this.trailing = false;
    if (this.window) clearTimeout(this.window);
    this.window = setTimeout(() => {
      this.window = undefined;
      if (this.trailing) this.publishNow();
    }, this.debounceMs);
    this.window.unref();
  }

  /**
   * Brings the next group up to date, in the kinds' order (proxyless gRPC first), and the others
   * one per turn of the event loop: what a group's streams were written reaches the wire before
   * the next group's work starts (Envoy's single route configuration costs work in every
   * service). `whenPublished` resolves once every group is done.
   */
  private flush(): void {
    const group = this.groupsToPublish().find((g) => this.pending.has(g)) ?? this.pending.keys().next().value;
    if (group !== undefined) {
      const changed = this.pending.get(group)!;
      this.pending.delete(group);
      this.publishGroup(group, changed);
    }
    if (this.pending.size > 0) {
      this.flushing ??= setImmediate(() => {
        this.flushing = undefined;
        this.flush();
      });
      return;
    }
    this.publishedRevision = this.pendingRevision;
    const ready = this.waiters.filter((w) => w.revision <= this.publishedRevision);
    this.waiters = this.waiters.filter((w) => w.revision > this.publishedRevision);
    for (const w of ready) w.resolve();
  }

  /** A group got its first node: it gets its configuration before its first response. */
  activate(group: string): void {
    this.active.add(group);
    if (!this.groupStates.has(group)) this.publishGroup(group, new Set());
  }

  /** A group's last node left: nothing keeps its configuration. */
  deactivate(group: string): void {
    if (!this.active.delete(group) || this.opts.groups.spec(group)?.services === '*') return;
    this.pending.delete(group);
    this.opts.cache.drop(group);
    this.groupStates.delete(group);
    this.opts.groups.forget(group);
  }

  /** The services to look at: those changed since the last publish, and those with problems
   *  (a clash may have gone); every service on the first publish. */
  private changedServices(state: DesiredState): string[] {
    if (!this.dirty || !this.publishedState) return [...new Set([...state.services.keys(), ...this.routings.keys()])];
    const out = new Set(this.dirty);
    for (const name of this.errors.keys()) out.add(name);
    return [...out];
  }

  /** The routing of a service, the same object while its service and rollout objects are. */
  private routingOf(name: string, service: NamedService, rollout: RolloutState | undefined): Routing {
    const hit = this.routings.get(name);
    if (hit && hit.service === service && hit.rollout === rollout) return hit.routing;
    const routing = routingOf(service, rollout);
    this.routings.set(name, { service, rollout, routing });
    return routing;
  }

  /**
   * The parts of the changed services for one kind. A service that fails keeps its last good part;
   * one whose names clash with another's is left out (the one that had them first keeps them).
   * Services that already have a part are handled first, so names they release are free for the
   * others in the same publish.
   */
  private updateParts(ks: KindState, state: DesiredState, changed: readonly string[], errors: Map<string, string>, partsChanged: Set<string>): void {
    const ordered = [...changed].sort((a, b) => Number(!ks.parts.has(a)) - Number(!ks.parts.has(b)));
    for (const name of ordered) {
      const before = ks.parts.get(name);
      const service = state.services.get(name);
      let part: ServicePart | undefined;
      if (service) {
        try {
          part = this.opts.translator.part(ks.kind, this.routingOf(name, service, state.rollouts.get(name)));
        } catch (err) {
          errors.set(name, `cannot be translated for ${ks.kind.name} clients (its last good resources stay): ${(err as Error).message}`);
          part = before;
        }
      }
      if (part === before && part !== undefined) continue;
      if (before) for (const r of before.resources) if (ks.owners.get(resourceKey(r)) === name) ks.owners.delete(resourceKey(r));
      const clash = part?.resources.find((r) => {
        const owner = ks.owners.get(resourceKey(r));
        return owner !== undefined && owner !== name;
      });
      if (part && clash) {
        errors.set(name, `not published to ${ks.kind.name} clients: resource "${clash.name}" is also served by service "${ks.owners.get(resourceKey(clash))}"`);
        part = undefined;
      }
      if (part) {
        for (const r of part.resources) ks.owners.set(resourceKey(r), name);
        ks.parts.set(name, part);
      } else ks.parts.delete(name);
      if (part !== before) partsChanged.add(name);
    }
  }

  /** The kinds' own groups (every service) always, scoped groups while a node uses them. */
  private groupsToPublish(): string[] {
    return [...new Set([...this.opts.translator.kinds.map((k) => k.name), ...this.active])];
  }

  /**
   * Brings a group up to date with its kind's parts: the resources of the services whose part
   * changed (those in the group's scope) come and go, and the shared ones are rebuilt when a part
   * of the group changed. A group published for the first time gets everything.
   */
  private publishGroup(group: string, partsChanged: ReadonlySet<string>): void {
    const spec = this.opts.groups.spec(group);
    const ks = spec && this.kinds.get(spec.kind);
    if (!spec || !ks) return;
    let gs = this.groupStates.get(group);
    const first = !gs;
    gs ??= { parts: new Map(), shared: [] };
    const visit = first ? ks.parts.keys() : partsChanged;
    const put = new Map<string, Resource[]>();
    const remove = new Map<string, string[]>();
    const add = <T>(m: Map<string, T[]>, typeUrl: string, v: T) => {
      let list = m.get(typeUrl);
      if (!list) m.set(typeUrl, (list = []));
      list.push(v);
    };
    const next = new Map<string, ServicePart | undefined>();
    for (const name of visit) {
      const part = inScope(spec.services, name) ? ks.parts.get(name) : undefined;
      const before = gs.parts.get(name);
      if (part === before) continue;
      next.set(name, part);
      const keep = new Set(part?.resources.map(resourceKey));
      if (before) for (const r of before.resources) if (!keep.has(resourceKey(r))) add(remove, r.typeUrl, r.name);
      if (part) for (const r of part.resources) add(put, r.typeUrl, r);
    }
    if (!first && next.size === 0) return;
    const current = gs.parts;
    // In service order, read only by kinds whose shared resources are built from the parts.
    const sortedParts = function* (names: readonly string[]): Generator<ServicePart> {
      for (const name of names) {
        const part = next.has(name) ? next.get(name) : current.get(name);
        if (part) yield part;
      }
    };
    const shared = ks.kind.shared(sortedParts(this.sortedNames));
    const sharedNames = new Set(shared.map(resourceKey));
    for (const r of gs.shared) if (!sharedNames.has(resourceKey(r))) add(remove, r.typeUrl, r.name);
    for (const r of shared) add(put, r.typeUrl, r);
    const changes: Record<string, { put: Resource[]; remove: string[] }> = {};
    for (const typeUrl of new Set([...put.keys(), ...remove.keys()])) changes[typeUrl] = { put: put.get(typeUrl) ?? [], remove: remove.get(typeUrl) ?? [] };
    try {
      this.opts.cache.patch(group, changes);
      for (const [name, part] of next) {
        if (part) current.set(name, part);
        else current.delete(name);
      }
      gs.shared = shared;
      this.groupStates.set(group, gs);
    } catch (err) {
      this.opts.log.error({ err, group }, 'publish failed');
    }
  }

  close(): void {
    if (this.window) clearTimeout(this.window);
    this.window = undefined;
    this.trailing = false;
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    for (const w of this.waiters.splice(0)) w.resolve();
  }
}
