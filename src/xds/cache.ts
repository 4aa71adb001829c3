// Resources by node group and type URL, which of them carry each owner, and the memoized
// state-of-the-world "views" that streams send. xDS-only: it knows nothing about services or
// rollouts (an owner is an opaque key the caller attaches to resources).
import type { Resource } from './resource.js';
import { hashBytes } from './resource.js';
import { ResourceSet } from './resource-set.js';
import { Field, bytesField, concat } from './wire.js';

/** What one state-of-the-world response for a type carries, minus the nonce. */
export interface View {
  readonly typeUrl: string;
  readonly version: string;
  readonly resources: ResourceSet;
  /** version_info + resources + type_url + control_plane fields of a DiscoveryResponse. */
  readonly body: Buffer;
  /** The body with a nonce, made by the first stream that sends this view and written as it is
   *  by the others (see SotwStream.framed). */
  shared?: SharedResponse;
}

export interface SharedResponse {
  /** From the process-wide nonce sequence: a stream that has seen a higher one gets its own. */
  readonly seq: number;
  readonly nonce: string;
  readonly bytes: Buffer;
}

export const WILDCARD = '*';
export type Selection = typeof WILDCARD | ReadonlySet<string>;

/** `owners`: the owners whose part of the group changed (a fragment changed, or a resource
 *  carrying them appeared or went away) in these types. `attached`: those of them now carried by
 *  a resource name that did not carry them before (a stream may newly count for them; a
 *  fragment that only changed concerns no stream that did not count for its owner already). */
export type CacheListener = (group: string, typeUrls: ReadonlySet<string>, owners: ReadonlySet<string>, attached: ReadonlySet<string>) => void;

const EMPTY: ReadonlyMap<string, Resource> = new Map();
const NONE: ReadonlySet<string> = new Set();

/** The memo key of a selection: `*`, or the sorted names. */
export function selectionKey(selection: Selection): string {
  return selection === WILDCARD ? WILDCARD : [...selection].sort().join('\n');
}

/** group → type URL → key → T: nested maps, so a lookup builds no key string. */
class Nested<T> {
  private readonly map = new Map<string, Map<string, Map<string, T>>>();

  get(group: string, typeUrl: string, key: string): T | undefined {
    return this.map.get(group)?.get(typeUrl)?.get(key);
  }

  byType(group: string, typeUrl: string): Map<string, T> | undefined {
    return this.map.get(group)?.get(typeUrl);
  }

  set(group: string, typeUrl: string, key: string, value: T): void {
    let byType = this.map.get(group);
    if (!byType) this.map.set(group, (byType = new Map()));
    let byKey = byType.get(typeUrl);
    if (!byKey) byType.set(typeUrl, (byKey = new Map()));
    byKey.set(key, value);
  }

  delete(group: string, typeUrl: string, key: string): void {
    const byType = this.map.get(group);
    const byKey = byType?.get(typeUrl);
    if (!byKey?.delete(key) || byKey.size > 0) return;
    byType!.delete(typeUrl);
    if (byType!.size === 0) this.map.delete(group);
  }

  /** The type's map, created empty when missing (the caller fills it, or removes it again). */
  typeMap(group: string, typeUrl: string): Map<string, T> {
    let byType = this.map.get(group);
    if (!byType) this.map.set(group, (byType = new Map()));
    let byKey = byType.get(typeUrl);
    if (!byKey) byType.set(typeUrl, (byKey = new Map()));
    return byKey;
  }

  replaceType(group: string, typeUrl: string, byKey: Map<string, T> | undefined): void {
    let byType = this.map.get(group);
    if (!byKey || byKey.size === 0) {
      byType?.delete(typeUrl);
      if (byType?.size === 0) this.map.delete(group);
      return;
    }
    if (!byType) this.map.set(group, (byType = new Map()));
    byType.set(typeUrl, byKey);
  }

  get size(): number {
    let n = 0;
    for (const byType of this.map.values()) for (const byKey of byType.values()) n += byKey.size;
    return n;
  }
}

export class ResourceCache {
  private readonly groups = new Map<string, Map<string, ReadonlyMap<string, Resource>>>();
  /** group → type URL → owner → the resources carrying it, by name. */
  private readonly owned = new Nested<ReadonlyMap<string, Resource>>();
  /** group → type URL → selection key → view, for selections some stream holds (see retainView). */
  private readonly views = new Nested<View>();
  /** group → type URL → selection key → how many streams hold that selection. */
  private readonly viewRefs = new Nested<number>();
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
   * keep theirs) and tells listeners which types changed. A resource whose version and owners
   * did not change keeps its identity, so nothing is re-sent for it.
   */
  set(group: string, byType: Readonly<Record<string, readonly Resource[]>>): ReadonlySet<string> {
    const before = this.groups.get(group);
    // Build every type first, so a rejected set changes nothing.
    const next = new Map<string, ReadonlyMap<string, Resource>>();
    const owners = new Set<string>();
    const attached = new Set<string>();
    for (const [typeUrl, list] of Object.entries(byType)) {
      const old = before?.get(typeUrl) ?? EMPTY;
      const after = new Map<string, Resource>();
      let changed = old.size !== list.length;
      for (const r of list) {
        if (r.typeUrl !== typeUrl) throw new Error(`resource ${r.name} is ${r.typeUrl}, not ${typeUrl}`);
        if (after.has(r.name)) throw new Error(`duplicate ${typeUrl} resource ${r.name}`);
        const kept = old.get(r.name);
        const same = kept !== undefined && kept.version === r.version && sameOwners(kept.owners, r.owners);
        after.set(r.name, same ? kept : r);
        if (!same) changed = true;
      }
      if (!changed) continue;
      next.set(typeUrl, after);
      changedOwners(old, after, owners, attached);
    }
    if (next.size === 0) return NONE;
    let types = before;
    if (!types) this.groups.set(group, (types = new Map()));
    for (const [typeUrl, after] of next) {
      types.set(typeUrl, after);
      this.views.replaceType(group, typeUrl, undefined);
      this.owned.replaceType(group, typeUrl, byOwner(after));
    }
    const changed = new Set(next.keys());
    for (const l of this.listeners) l(group, changed, owners, attached);
    return changed;
  }

  /**
   * Changes some resources of a group, leaving the others as they are: work in the size of the
   * change, not of the group (a change to one of 10,000 services touches its own resources). Per
   * type, `remove` names go away and `put` resources are added or replace theirs; a put whose
   * version and owners did not change keeps the old identity, so nothing is re-sent for it.
   * Tells listeners which types changed, as `set` does. A rejected patch changes nothing.
   */
  patch(group: string, changes: Readonly<Record<string, { readonly put?: readonly Resource[]; readonly remove?: readonly string[] }>>): ReadonlySet<string> {
    for (const [typeUrl, { put = [] }] of Object.entries(changes)) {
      const seen = new Set<string>();
      for (const r of put) {
        if (r.typeUrl !== typeUrl) throw new Error(`resource ${r.name} is ${r.typeUrl}, not ${typeUrl}`);
        if (seen.has(r.name)) throw new Error(`duplicate ${typeUrl} resource ${r.name}`);
        seen.add(r.name);
      }
    }
    let types = this.groups.get(group);
    if (!types) this.groups.set(group, (types = new Map()));
    const changed = new Set<string>();
    const owners = new Set<string>();
    const attached = new Set<string>();
    for (const [typeUrl, { put = [], remove = [] }] of Object.entries(changes)) {
      // The cache made every map it holds: changing it in place is safe.
      let map = types.get(typeUrl) as Map<string, Resource> | undefined;
      if (!map) types.set(typeUrl, (map = new Map()));
      const index = this.ownerIndex(group, typeUrl);
      let touched = false;
      const putNames = new Set(put.map((r) => r.name));
      for (const name of remove) {
        const old = map.get(name);
        if (!old || putNames.has(name)) continue;
        map.delete(name);
        unindexOwners(index, old);
        for (const o in old.owners) owners.add(o);
        touched = true;
      }
      for (const r of put) {
        const old = map.get(r.name);
        if (old !== undefined && old.version === r.version && sameOwners(old.owners, r.owners)) continue;
        map.set(r.name, r);
        if (old) unindexOwners(index, old);
        indexOwners(index, r);
        for (const o in r.owners) {
          if (old?.owners[o] !== r.owners[o]) owners.add(o);
          if (!old || !(o in old.owners)) attached.add(o);
        }
        if (old) for (const o in old.owners) if (!(o in r.owners)) owners.add(o);
        touched = true;
      }
      if (index.size === 0) this.owned.replaceType(group, typeUrl, undefined);
      if (!touched) continue;
      changed.add(typeUrl);
      this.views.replaceType(group, typeUrl, undefined);
    }
    if (changed.size === 0) return NONE;
    for (const l of this.listeners) l(group, changed, owners, attached);
    return changed;
  }

  /** The owner index of a group's type, created empty when missing (patch keeps it current). */
  private ownerIndex(group: string, typeUrl: string): Map<string, Map<string, Resource>> {
    return this.owned.typeMap(group, typeUrl) as Map<string, Map<string, Resource>>;
  }

  resources(group: string, typeUrl: string): ReadonlyMap<string, Resource> {
    return this.groups.get(group)?.get(typeUrl) ?? EMPTY;
  }

  /** The resources of a type that carry `owner` in a group, by name. */
  ownedBy(group: string, typeUrl: string, owner: string): ReadonlyMap<string, Resource> | undefined {
    return this.owned.get(group, typeUrl, owner);
  }

  /** Every owner some resource of the type carries in a group. */
  owners(group: string, typeUrl: string): Iterable<string> {
    return this.owned.byType(group, typeUrl)?.keys() ?? NONE;
  }

  /** Forgets a group no stream uses any more (views still held by streams stay until released). */
  drop(group: string): void {
    const types = this.groups.get(group);
    if (!types) return;
    this.groups.delete(group);
    for (const typeUrl of types.keys()) {
      this.views.replaceType(group, typeUrl, undefined);
      this.owned.replaceType(group, typeUrl, undefined);
    }
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /**
   * The response for a wildcard or named subscription. Memoized until the type changes while
   * some stream holds the selection (retainView), so a fan-out builds it once; selections
   * nobody holds (a Fetch, a client gone) are built on demand and not kept.
   * `key` is `selectionKey(selection)` when the caller keeps it (streams do, so a push sorts nothing).
   */
  view(group: string, typeUrl: string, selection: Selection, key = selectionKey(selection)): View {
    let view = this.views.get(group, typeUrl, key);
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
      if (this.viewRefs.get(group, typeUrl, key)) this.views.set(group, typeUrl, key, view);
    }
    return view;
  }

  /** A stream subscribes with this selection: its view stays memoized until released. */
  retainView(group: string, typeUrl: string, key: string): void {
    this.viewRefs.set(group, typeUrl, key, (this.viewRefs.get(group, typeUrl, key) ?? 0) + 1);
  }

  /** The stream changed its selection or went away: the last holder drops the memoized view. */
  releaseView(group: string, typeUrl: string, key: string): void {
    const n = (this.viewRefs.get(group, typeUrl, key) ?? 0) - 1;
    if (n > 0) return this.viewRefs.set(group, typeUrl, key, n);
    this.viewRefs.delete(group, typeUrl, key);
    this.views.delete(group, typeUrl, key);
  }

  /** How many views are memoized (and how many selections are held): both follow the streams. */
  memoStats(): { views: number; selections: number } {
    return { views: this.views.size, selections: this.viewRefs.size };
  }

  /** Builds a view from an explicit list (used when a stream must keep extra resources). */
  compose(typeUrl: string, list: readonly Resource[]): View {
    const sorted = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const version = hashBytes(typeUrl, ...sorted.map((r) => `\n${r.name}\0${r.version}`));
    const resources = new ResourceSet(sorted.map((r) => [r.name, r] as const));
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

function sameOwners(a: Resource['owners'], b: Resource['owners']): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** Adds to `out` every owner whose fragment differs between two versions of a type, and to
 *  `attached` those carried by a name that did not carry them before. */
function changedOwners(before: ReadonlyMap<string, Resource>, after: ReadonlyMap<string, Resource>, out: Set<string>, attached: Set<string>): void {
  for (const [name, r] of after) {
    const old = before.get(name);
    if (old === r) continue;
    for (const o in r.owners) {
      if (old?.owners[o] !== r.owners[o]) out.add(o);
      if (!old || !(o in old.owners)) attached.add(o);
    }
    if (old) for (const o in old.owners) if (!(o in r.owners)) out.add(o);
  }
  for (const [name, old] of before) if (!after.has(name)) for (const o in old.owners) out.add(o);
}

function indexOwners(index: Map<string, Map<string, Resource>>, r: Resource): void {
  for (const o in r.owners) {
    let names = index.get(o);
    if (!names) index.set(o, (names = new Map()));
    names.set(r.name, r);
  }
}

function unindexOwners(index: Map<string, Map<string, Resource>>, r: Resource): void {
  for (const o in r.owners) {
    const names = index.get(o);
    if (names?.get(r.name) === r && names.delete(r.name) && names.size === 0) index.delete(o);
  }
}

function byOwner(resources: ReadonlyMap<string, Resource>): Map<string, ReadonlyMap<string, Resource>> {
  const out = new Map<string, Map<string, Resource>>();
  for (const r of resources.values())
    for (const o in r.owners) {
      let names = out.get(o);
      if (!names) out.set(o, (names = new Map()));
      names.set(r.name, r);
    }
  return out;
}
