// Desired state in, cache contents out. Takes each new snapshot of the desired state, has every
// service translated for every kind of client, and sets the cache group of each kind. Bursts
// are coalesced; an urgent change (a rollback) is published at once. One service that cannot
// be translated, or whose resources clash with another's, keeps its last good resources (or is
// left out) and is reported; it never stops the others from publishing.
import type { Logger } from 'pino';
import type { ConfigProblem, DesiredState } from '../state/desired-state.js';
import type { StateChange } from '../state/writer.js';
import type { ServicePart } from '../translate/client-kind.js';
import type { Translator } from '../translate/translate.js';
import type { ResourceCache } from '../xds/cache.js';
import { routingOf } from './routing-of.js';

export interface ReconcilerOptions {
  cache: ResourceCache;
  translator: Translator;
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
    const { translator, cache, log } = this.opts;
    const names = [...state.services.keys()].sort();
    const errors = new Map<string, string>();
    const owners = new Map<string, string>();
    // Services that already own a name publish first, so a clash never evicts the innocent.
    const byOwnership = (kind: string) => (a: string, b: string) => Number(!this.lastGood.get(kind)!.has(a)) - Number(!this.lastGood.get(kind)!.has(b));
    for (const kind of translator.kinds) {
      const good = this.lastGood.get(kind.name)!;
      const parts: ServicePart[] = [];
      for (const name of [...names].sort(byOwnership(kind.name))) {
        let part: ServicePart | undefined;
        try {
          part = translator.part(kind, routingOf(state.services.get(name)!, state.rollouts.get(name)));
        } catch (err) {
          errors.set(name, `cannot be translated for ${kind.name} clients (its last good resources stay): ${(err as Error).message}`);
          part = good.get(name);
        }
        if (!part) continue;
        const clash = part.resources.find((r) => {
          const owner = owners.get(`${kind.name}\0${r.typeUrl}\0${r.name}`);
          return owner !== undefined && owner !== name;
        });
        if (clash) {
          const owner = owners.get(`${kind.name}\0${clash.typeUrl}\0${clash.name}`);
          errors.set(name, `not published to ${kind.name} clients: resource "${clash.name}" is also served by service "${owner}"`);
          continue;
        }
        for (const r of part.resources) owners.set(`${kind.name}\0${r.typeUrl}\0${r.name}`, name);
        good.set(name, part);
        parts.push(part);
      }
      for (const name of good.keys()) if (!state.services.has(name)) good.delete(name);
      try {
        cache.set(kind.name, kind.assemble(parts));
      } catch (err) {
        log.error({ err, kind: kind.name }, 'publish failed');
      }
    }
    translator.forgetAllBut(new Set(names));
    for (const [name, message] of errors) if (this.errors.get(name) !== message) log.error({ service: name, problem: message }, 'service not published as declared');
    this.errors.clear();
    for (const [k, v] of errors) this.errors.set(k, v);
    this.publishedRevision = state.revision;
    const ready = this.waiters.filter((w) => w.revision <= state.revision);
    this.waiters = this.waiters.filter((w) => w.revision > state.revision);
    for (const w of ready) w.resolve();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w.resolve();
  }
}
