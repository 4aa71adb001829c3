// Resources by name, plus the two lookups fleet status needs: which of them carry an owner, and
// which names of other types they point at. Both are built on first use (a view shared by
// thousands of streams builds them once) and then kept up to date by set/delete, so a stream's
// own mutable set (delta) pays per change, never per lookup.
import type { Resource } from './resource.js';

export class ResourceSet extends Map<string, Resource> {
  /** owner → name → resource carrying it. */
  private byOwner?: Map<string, Map<string, Resource>>;
  /** type URL → name → how many resources here point at it. */
  private refCounts?: Map<string, Map<string, number>>;

  override set(name: string, r: Resource): this {
    if (this.byOwner) {
      const old = super.get(name);
      if (old === r) return this;
      if (old) this.unindex(old);
      this.index(r);
    }
    return super.set(name, r);
  }

  override delete(name: string): boolean {
    const old = super.get(name);
    if (!old) return false;
    if (this.byOwner) this.unindex(old);
    return super.delete(name);
  }

  override clear(): void {
    this.byOwner = undefined;
    this.refCounts = undefined;
    super.clear();
  }

  /** The resources here that carry `owner`, by name. */
  ownedBy(owner: string): ReadonlyMap<string, Resource> | undefined {
    return this.indexes().byOwner.get(owner);
  }

  /** Every owner some resource here carries. */
  owners(): IterableIterator<string> {
    return this.indexes().byOwner.keys();
  }

  /** Whether a resource here points at `name` of `typeUrl`. */
  refersTo(typeUrl: string, name: string): boolean {
    return (this.indexes().refCounts.get(typeUrl)?.get(name) ?? 0) > 0;
  }

  /** The names of `typeUrl` resources here point at. */
  referenced(typeUrl: string): IterableIterator<string> | undefined {
    return this.indexes().refCounts.get(typeUrl)?.keys();
  }

  private indexes(): { byOwner: Map<string, Map<string, Resource>>; refCounts: Map<string, Map<string, number>> } {
    if (!this.byOwner) {
      this.byOwner = new Map();
      this.refCounts = new Map();
      for (const r of super.values()) this.index(r);
    }
    return { byOwner: this.byOwner, refCounts: this.refCounts! };
  }

  private index(r: Resource): void {
    for (const owner in r.owners) {
      let names = this.byOwner!.get(owner);
      if (!names) this.byOwner!.set(owner, (names = new Map()));
      names.set(r.name, r);
    }
    for (const typeUrl in r.refs) {
      let counts = this.refCounts!.get(typeUrl);
      if (!counts) this.refCounts!.set(typeUrl, (counts = new Map()));
      for (const n of r.refs[typeUrl]!) counts.set(n, (counts.get(n) ?? 0) + 1);
    }
  }

  private unindex(r: Resource): void {
    for (const owner in r.owners) {
      const names = this.byOwner!.get(owner);
      if (names?.delete(r.name) && names.size === 0) this.byOwner!.delete(owner);
    }
    for (const typeUrl in r.refs) {
      const counts = this.refCounts!.get(typeUrl);
      if (!counts) continue;
      for (const n of r.refs[typeUrl]!) {
        const c = (counts.get(n) ?? 0) - 1;
        if (c > 0) counts.set(n, c);
        else counts.delete(n);
      }
      if (counts.size === 0) this.refCounts!.delete(typeUrl);
    }
  }
}

/** Shared by every state that holds nothing yet: refuses changes. */
class EmptySet extends ResourceSet {
  override set(): this {
    throw new Error('EMPTY_SET is shared and cannot be changed');
  }
}
export const EMPTY_SET: ResourceSet = new EmptySet();
