// The state writer's ordering: changes of one service apply in order, and a service never waits
// for another's (a rollback must not queue behind other rollouts' writes); and the scheduler's
// reaction to a fleet that rejects the routes.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RolloutScheduler } from '../../src/rollout/scheduler.js';
import type { NodeConvergence } from '../../src/rollout/scheduler.js';
import { StateWriter } from '../../src/state/writer.js';
import { FileStore } from '../../src/store/file-store.js';
import type { Expectations, Store, StoreOp } from '../../src/store/store.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';
import { StoreProxy } from '../support/store-proxy.js';

const log = pino({ level: 'silent' });

/** A real file store whose commits touching chosen keys wait until released. */
class GatedStore extends StoreProxy {
  private gates: (() => void)[] = [];
  constructor(
    inner: Store,
    private readonly held: (key: string) => boolean,
  ) {
    super(inner);
  }
  override async commit(ops: StoreOp[], expect?: Expectations) {
    if (ops.some((op) => this.held('put' in op ? op.put : op.delete))) await new Promise<void>((release) => this.gates.push(release));
    return this.inner.commit(ops, expect);
  }
  get waiting() {
    return this.gates.length;
  }
  release() {
    for (const g of this.gates.splice(0)) g();
  }
}

describe('StateWriter ordering', () => {
  it('rolls one service back while other services\' rollout writes are still pending', async () => {
    const store = new GatedStore(await FileStore.open(tempDir()), (key) => key.startsWith('rollouts/') && key !== 'rollouts/s0');
    const writer = new StateWriter({ store, log });
    await writer.load();
    for (let i = 0; i < 5; i++) await writer.putService(`s${i}`, serviceOf({ v1: 1000 + i, v2: 2000 + i }), 'test');
    const steps = [{ setWeight: 10 }, { pause: {} }];
    await writer.createRollout({ service: 's0', canary: 'v2', steps }, 'test');

    const others = [1, 2, 3, 4].map((i) => writer.createRollout({ service: `s${i}`, canary: 'v2', steps }, 'test'));
    await new Promise((r) => setImmediate(r));
    expect(store.waiting).toBe(4); // every other service's first write is held

    const rolledBack = await writer.rolloutEvent('s0', { type: 'rollback', reason: 'test' }, 'test');
    expect(rolledBack.phase).toBe('RolledBack');
    expect(store.waiting).toBe(4); // ...and still held: the rollback did not wait for them

    store.release();
    expect((await Promise.all(others)).map((r) => r.phase)).toEqual(['Progressing', 'Progressing', 'Progressing', 'Progressing']);
    // The others were checked before the rollback was published and stored after it: publishing
    // them must not bring s0's earlier state back (nor drop each other).
    expect([...writer.state.rollouts.values()].map((r) => [r.service, r.phase]).sort()).toEqual([
      ['s0', 'RolledBack'],
      ['s1', 'Progressing'],
      ['s2', 'Progressing'],
      ['s3', 'Progressing'],
      ['s4', 'Progressing'],
    ]);
    writer.close();
  });

  it('applies one service\'s changes in call order, declarations and rollouts alike', async () => {
    const store = await FileStore.open(tempDir());
    const writer = new StateWriter({ store, log });
    await writer.load();
    await writer.putService('s', serviceOf({ v1: 1, v2: 2 }), 'test');
    const created = writer.createRollout({ service: 's', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] }, 'test');
    const removeCanary = writer.putService('s', serviceOf({ v1: 1 }), 'test'); // queued behind the rollout: must see it
    const pause = writer.rolloutEvent('s', { type: 'pause' }, 'test');
    const rollback = writer.rolloutEvent('s', { type: 'rollback' }, 'test');
    await created;
    await expect(removeCanary).rejects.toThrow('version "v2" is in an active rollout and cannot be removed');
    expect((await pause).phase).toBe('Paused');
    expect((await rollback).phase).toBe('RolledBack');
    expect((await store.read<{ phase: string }>('rollouts/s'))!.value.phase).toBe('RolledBack');
    writer.close();
  });
});

describe('RolloutScheduler and a fleet that rejects the routes', () => {
  it('pauses the schedule with the NACK in the history; resume waits for the ACK again', async () => {
    const store = await FileStore.open(tempDir());
    const writer = new StateWriter({ store, log });
    await writer.load();
    let answer: 'rejected' | 'acked' = 'rejected';
    const asked: string[] = [];
    const scheduler = new RolloutScheduler({
      sink: writer,
      fleet: {
        awaitService: async (service): Promise<NodeConvergence[]> => {
          asked.push(service);
          return [{ node: 'edge-1', stream: 1, state: answer, ms: 1, ...(answer === 'rejected' ? { message: 'route: unknown cluster' } : {}) }];
        },
      },
      published: async () => undefined,
      log,
    });
    writer.on('change', (c) => scheduler.onChange(c.services));
    await writer.putService('s', serviceOf({ v1: 1, v2: 2 }), 'test');
    await writer.createRollout({ service: 's', canary: 'v2', steps: [{ setWeight: 10 }, { setWeight: 50 }] }, 'test');
    const paused = await eventually(() => {
      const r = writer.state.rollouts.get('s')!;
      return r.phase === 'Paused' ? r : undefined;
    });
    expect(paused.pausedBy).toBe('fleet');
    expect(paused.weights).toEqual({ v1: 90, v2: 10 });
    expect(paused.history.at(-1)).toMatchObject({ event: 'FleetRejected', by: 'fleet' });
    expect(paused.history.at(-1)!.reason).toContain('edge-1 rejected the routes for weight 10: route: unknown cluster');
    expect(new Set(asked)).toEqual(new Set(['s'])); // only the rollout's own service is asked about

    answer = 'acked';
    await writer.rolloutEvent('s', { type: 'resume' }, 'test');
    const done = await eventually(() => {
      const r = writer.state.rollouts.get('s')!;
      return r.phase === 'Promoted' ? r : undefined;
    });
    expect(done.history.map((h) => h.event)).toContain('WeightAcked');
    expect(writer.state.services.get('s')!.stable).toBe('v2'); // promoted in the same commit
    scheduler.close();
    writer.close();
  });
});

describe('RolloutScheduler and a timer that fires before its deadline', () => {
  it('looks again, so the pause ends when it is due instead of never', async () => {
    const store = await FileStore.open(tempDir());
    const writer = new StateWriter({ store, log });
    await writer.load();
    // Node arms a timer from the event loop's cached clock: on a busy loop it fires before the
    // wall-clock deadline the machine checks. A scheduler clock 50 ms ahead of the machine's
    // makes every timer fire that much early, every time.
    const scheduler = new RolloutScheduler({
      sink: writer,
      fleet: { awaitService: async (): Promise<NodeConvergence[]> => [{ node: 'n', stream: 1, state: 'acked', ms: 1 }] },
      published: async () => undefined,
      log,
      now: () => new Date(Date.now() + 50),
    });
    writer.on('change', (c) => scheduler.onChange(c.services));
    await writer.putService('s', serviceOf({ v1: 1, v2: 2 }), 'test');
    await writer.createRollout({ service: 's', canary: 'v2', steps: [{ setWeight: 10 }, { pause: { duration: '200ms' } }, { setWeight: 50 }, { pause: {} }] }, 'test');
    const after = await eventually(() => {
      const r = writer.state.rollouts.get('s')!;
      return r.phase === 'Paused' && r.step === 3 ? r : undefined;
    }, 3000);
    const started = after.history.find((h) => h.event === 'PauseStarted')!;
    const ended = after.history.find((h) => h.event === 'StepCompleted' && h.step === 1)!;
    expect(ended.by).toBe('schedule');
    expect(Date.parse(ended.at) - Date.parse(started.at)).toBeGreaterThanOrEqual(200); // not before it was due
    expect(after.history.filter((h) => h.event === 'StepCompleted' && h.step === 1)).toHaveLength(1);
    scheduler.close();
    writer.close();
  });
});
