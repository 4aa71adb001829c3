// The declared services: validated, stored durably, then published.
import type { Store } from '../store/store.js';
import type { NamedService, Service } from '../model/service.js';
import { domainsOf } from '../model/service.js';
import { Serial } from './serial.js';

export class ConflictError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {}

/** A veto on replacing or deleting a service (active rollouts use it). */
export type ServiceGuard = (name: string, next: Service | null) => void;

export class ServiceRegistry {
  private readonly services = new Map<string, NamedService>();
  private guard: ServiceGuard = () => {};
  private readonly serial = new Serial();

  constructor(
    private readonly store: Store,
    private readonly changed: () => unknown,
  ) {}

  async load(): Promise<void> {
    for (const { value } of await this.store.list<NamedService>('services/')) this.services.set(value.name, value);
  }

  setGuard(guard: ServiceGuard): void {
    this.guard = guard;
  }

  list(): NamedService[] {
    return [...this.services.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  get(name: string): NamedService | undefined {
    return this.services.get(name);
  }

  /** Creates or replaces; returns whether it was created. */
  put(name: string, spec: Service): Promise<{ service: NamedService; created: boolean }> {
    return this.serial.run(() => this.putNow(name, spec));
  }

  private async putNow(name: string, spec: Service): Promise<{ service: NamedService; created: boolean }> {
    this.guard(name, spec);
    const service: NamedService = { name, ...spec };
    // Envoy rejects a route configuration in which two virtual hosts share a domain (compared
    // without regard to case), so a domain belongs to one service.
    const taken = new Map<string, string>();
    for (const other of this.services.values())
      if (other.name !== name) for (const d of domainsOf(other)) taken.set(d.toLowerCase(), other.name);
    for (const d of domainsOf(service))
      if (taken.has(d.toLowerCase()))
        throw new ConflictError(`domain "${d}" is already used by service "${taken.get(d.toLowerCase())}"`, 'domains');
    await this.store.put(`services/${name}`, service);
    const created = !this.services.has(name);
    this.services.set(name, service);
    this.changed();
    return { service, created };
  }

  delete(name: string): Promise<void> {
    return this.serial.run(() => this.deleteNow(name));
  }

  private async deleteNow(name: string): Promise<void> {
    if (!this.services.has(name)) throw new NotFoundError(`service "${name}" not found`);
    this.guard(name, null);
    await this.store.delete(`services/${name}`);
    this.services.delete(name);
    this.changed();
  }
}
