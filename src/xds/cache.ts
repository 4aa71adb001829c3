// Resources by node group and type URL, and the memoized state-of-the-world "views" that
// streams send. xDS-only: it knows nothing about services or rollouts.
import type { Resource } from './resource.js';
import { hashBytes } from './resource.js';
import { Field, bytesField, concat } from './wire.js';

/** What one state-of-the-world response for a type carries, minus the nonce. */
export interface View {
  readonly typeUrl: string;
  readonly version: string;
  readonly resources: ReadonlyMap<string, Resource>;
  /** version_info + resources + type_url + control_plane fields of a DiscoveryResponse. */
  readonly body: Buffer;
}

export const WILDCARD = '*';
export type Selection = typeof WILDCARD | ReadonlySet<string>;

export type CacheListener = (group: string, typeUrls: ReadonlySet<string>) => void;

const EMPTY: ReadonlyMap<string, Resource> = new Map();

/** The memo key of a selection: `*`, or the sorted names. */
export function selectionKey(selection: Selection): string {
  return selection === WILDCARD ? WILDCARD : [...selection].sort().join('\n');
}

export class ResourceCache {
  private readonly groups = new Map<string, Map<string, ReadonlyMap<string, Resource>>>();
  /** group → type URL → selection key → view. Nested maps: a lookup builds no key string. */
  private readonly views = new Map<string, Map<string, Map<string, View>>>();
  private readonly listeners = new Set<CacheListener>();
  private readonly controlPlaneField: Buffer;
  /** control_plane field for DeltaDiscoveryResponse (another field number). */
  readonly deltaControlPlaneField: Buffer;

  constructor(controlPlaneIdentifier = 'sluice') {
    const controlPlane = bytesField(Field.controlPlane.identifier, controlPlaneIdentifier);
    this.controlPlaneField = bytesField(Field.response.controlPlane, controlPlane);
    this.deltaControlPlaneField = bytesField(Field.deltaResponse.controlPlane, controlPlane);
  }

  /**
   * Replaces the complete set of resources of the given types for a group (types not named
   * keep theirs) and tells listeners which types changed. A resource whose version did not
   * change keeps its identity, so nothing is re-sent for it.
   */
  set(group: string, byType: Readonly<Record<string, readonly Resource[]>>): ReadonlySet<string> {
    const before = this.groups.get(group);
    // Build every type first, so a rejected set changes nothing.
    const next = new Map<string, ReadonlyMap<string, Resource>>();
    for (const [typeUrl, list] of Object.entries(byType)) {
      const old = before?.get(typeUrl) ?? EMPTY;
      const after = new Map<string, Resource>();
      for (const r of list) {
        if (r.typeUrl !== typeUrl) throw new Error(`resource ${r.name} is ${r.typeUrl}, not ${typeUrl}`);
        if (after.has(r.name)) throw new Error(`duplicate ${typeUrl} resource ${r.name}`);
        const kept = old.get(r.name);
        after.set(r.name, kept && kept.version === r.version ? kept : r);
      }
      if (!sameVersions(old, after)) next.set(typeUrl, after);
    }
    if (next.size === 0) return new Set();
    let types = before;
    if (!types) this.groups.set(group, (types = new Map()));
    for (const [typeUrl, after] of next) {
      types.set(typeUrl, after);
      this.views.get(group)?.delete(typeUrl);
    }
    const changed = new Set(next.keys());
    for (const l of this.listeners) l(group, changed);
    return changed;
  }

  resources(group: string, typeUrl: string): ReadonlyMap<string, Resource> {
    return this.groups.get(group)?.get(typeUrl) ?? EMPTY;
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /**
   * The response for a wildcard or named subscription, memoized until the type changes.
   * `key` is `selectionKey(selection)` when the caller keeps it (streams do, so a push sorts nothing).
   */
  view(group: string, typeUrl: string, selection: Selection, key = selectionKey(selection)): View {
    let byType = this.views.get(group);
    if (!byType) this.views.set(group, (byType = new Map()));
    let memo = byType.get(typeUrl);
    if (!memo) byType.set(typeUrl, (memo = new Map()));
    let view = memo.get(key);
    if (!view) {
      const all = this.resources(group, typeUrl);
      let picked: Resource[];
      if (selection === WILDCARD) picked = [...all.values()];
      else {
        picked = [];
        for (const name of selection) {
          const r = all.get(name);
          if (r) picked.push(r);
        }
      }
      view = this.compose(typeUrl, picked);
      memo.set(key, view);
    }
    return view;
  }

  /** Builds a view from an explicit list (used when a stream must keep extra resources). */
  compose(typeUrl: string, list: readonly Resource[]): View {
    const sorted = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const version = hashBytes(typeUrl, ...sorted.map((r) => `\n${r.name}\0${r.version}`));
    const resources = new Map(sorted.map((r) => [r.name, r] as const));
    const body = concat([
      bytesField(Field.response.versionInfo, version),
      ...sorted.map((r) => r.sotwField),
      bytesField(Field.response.typeUrl, typeUrl),
      this.controlPlaneField,
    ]);
    return { typeUrl, version, resources, body };
  }

  onChange(listener: CacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function sameVersions(a: ReadonlyMap<string, Resource>, b: ReadonlyMap<string, Resource>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, r] of a) if (b.get(name)?.version !== r.version) return false;
  return true;
}
