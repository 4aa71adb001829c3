// The rollout controller's ordering: changes of one service apply in order, and a service never
// waits for another's (a rollback must not queue behind other rollouts' writes).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../../src/control/services.js';
import { RolloutController } from '../../src/rollout/controller.js';
import { FileStore } from '../../src/store/file-store.js';
import type { Store } from '../../src/store/store.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';

/** A real file store whose writes of chosen keys wait until released. */
class GatedStore implements Store {
  private gates: (() => void)[] = [];
  constructor(
    private readonly inner: Store,
    private readonly held: (key: string) => boolean,
  ) {}
  get<T>(key: string) {
    return this.inner.get<T>(key);
  }
  list<T>(prefix: string) {
    return this.inner.list<T>(prefix);
  }
  async put(key: string, value: unknown) {
    if (this.held(key)) await new Promise<void>((release) => this.gates.push(release));
    return this.inner.put(key, value);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  close() {
    return this.inner.close();
  }
  entries<T>(prefix: string) {
    return this.inner.entries<T>(prefix);
  }
  read<T>(key: string) {
    return this.inner.read<T>(key);
  }
  commit(...args: Parameters<Store['commit']>) {
    return this.inner.commit(...args);
  }
  quarantine(...args: Parameters<Store['quarantine']>) {
    return this.inner.quarantine(...args);
  }
  quarantined() {
    return this.inner.quarantined();
  }
  health() {
    return this.inner.health();
  }
  watch(...args: Parameters<Store['watch']>) {
    return this.inner.watch(...args);
  }
  get waiting() {
    return this.gates.length;
  }
  release() {
    for (const g of this.gates.splice(0)) g();
  }
}

describe('RolloutController ordering', () => {
  it('rolls one service back while other services\' rollout writes are still pending', async () => {
    const store = new GatedStore(await FileStore.open(tempDir()), (key) => key.startsWith('rollouts/') && key !== 'rollouts/s0');
    const services = new ServiceRegistry(store, () => undefined);
    const controller = new RolloutController({
      store,
      services,
      fleet: { awaitRoutes: async () => [] }, // no xDS node connected
      log: pino({ level: 'silent' }),
      publish: async () => undefined,
    });
    for (let i = 0; i < 5; i++) await services.put(`s${i}`, serviceOf({ v1: 1000 + i, v2: 2000 + i }));
    const steps = [{ setWeight: 10 }, { pause: {} }];
    await controller.create({ service: 's0', canary: 'v2', steps }, 'test');

    const others = [1, 2, 3, 4].map((i) => controller.create({ service: `s${i}`, canary: 'v2', steps }, 'test'));
    await new Promise((r) => setImmediate(r));
    expect(store.waiting).toBe(4); // every other service's first write is held

    const rolledBack = await controller.act('s0', { type: 'rollback', reason: 'test' }, 'test');
    expect(rolledBack.phase).toBe('RolledBack');
    expect(store.waiting).toBe(4); // ...and still held: the rollback did not wait for them

    store.release();
    expect((await Promise.all(others)).map((r) => r.phase)).toEqual(['Progressing', 'Progressing', 'Progressing', 'Progressing']);
    controller.close();
  });

  it('applies one service\'s changes in call order', async () => {
    const store = await FileStore.open(tempDir());
    const services = new ServiceRegistry(store, () => undefined);
    const controller = new RolloutController({ store, services, fleet: { awaitRoutes: async () => [] }, log: pino({ level: 'silent' }), publish: async () => undefined });
    await services.put('s', serviceOf({ v1: 1, v2: 2 }));
    const created = controller.create({ service: 's', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] }, 'test');
    const pause = controller.act('s', { type: 'pause' }, 'test');
    const rollback = controller.act('s', { type: 'rollback' }, 'test');
    await created;
    expect((await pause).phase).toBe('Paused');
    expect((await rollback).phase).toBe('RolledBack');
    expect((await store.get<{ phase: string }>('rollouts/s'))!.phase).toBe('RolledBack');
    controller.close();
  });
});

describe('RolloutController and a fleet that rejects the routes', () => {
  it('pauses the schedule with the NACK in the history; resume waits for the ACK again', async () => {
    const store = await FileStore.open(tempDir());
    const services = new ServiceRegistry(store, () => undefined);
    let answer: 'rejected' | 'acked' = 'rejected';
    const controller = new RolloutController({
      store,
      services,
      fleet: {
        awaitRoutes: async () => [
          { node: 'edge-1', stream: 1, state: answer, ms: 1, ...(answer === 'rejected' ? { message: 'route: unknown cluster' } : {}) },
        ],
      },
      log: pino({ level: 'silent' }),
      publish: async () => undefined,
    });
    await services.put('s', serviceOf({ v1: 1, v2: 2 }));
    await controller.create({ service: 's', canary: 'v2', steps: [{ setWeight: 10 }, { setWeight: 50 }] }, 'test');
    const paused = await eventually(() => {
      const r = controller.get('s')!;
      return r.phase === 'Paused' ? r : undefined;
    });
    expect(paused.pausedBy).toBe('fleet');
    expect(paused.weights).toEqual({ v1: 90, v2: 10 });
    expect(paused.history.at(-1)).toMatchObject({ event: 'FleetRejected', by: 'fleet' });
    expect(paused.history.at(-1)!.reason).toContain('edge-1 rejected the routes for weight 10: route: unknown cluster');

    answer = 'acked';
    await controller.act('s', { type: 'resume' }, 'test');
    const done = await eventually(() => {
      const r = controller.get('s')!;
      return r.phase === 'Promoted' ? r : undefined;
    });
    expect(done.history.map((h) => h.event)).toContain('WeightAcked');
    controller.close();
  });
});
