// Two state writers on one etcd, standing for two replicas: each serves the other's changes
// (through the store's watch), no change of one overwrites the other's, cross-service name
// claims cannot race, a rollback the store refused is applied to what another replica left,
// and a watch that missed changes (a member down, the history compacted) catches up.
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import { StateWriter } from '../../src/state/writer.js';
import { EtcdStore } from '../../src/store/etcd-store.js';
import type { Expectations, Store, StoreOp } from '../../src/store/store.js';
import { StoreUnavailableError } from '../../src/store/store.js';
import type { EtcdCluster } from '../support/etcd.js';
import { etcdAvailable, startEtcdCluster } from '../support/etcd.js';
import { eventually, serviceOf } from '../support/sluice.js';
import { StoreProxy } from '../support/store-proxy.js';

const log = pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });

/** An etcd store that can be made unreachable for this replica only (a partition). */
class Partitionable extends StoreProxy {
  down = false;
  private gate(): void {
    if (this.down) throw new StoreUnavailableError('EUNAVAILABLE', 'etcd is unreachable (partitioned in the test)');
  }
  override async entries<T>(prefix: string) {
    this.gate();
    return this.inner.entries<T>(prefix);
  }
  override async read<T>(key: string) {
    this.gate();
    return this.inner.read<T>(key);
  }
  override async snapshot(prefixes: readonly string[]) {
    this.gate();
    return super.snapshot(prefixes);
  }
  override async commit(ops: StoreOp[], expect?: Expectations) {
    this.gate();
    return this.inner.commit(ops, expect);
  }
  override health() {
    return this.down ? { ok: false, message: 'partitioned' } : this.inner.health();
  }
}

describe.skipIf(!etcdAvailable)('state writers of two replicas on one etcd', () => {
  let etcd: EtcdCluster;
  let round = 0;
  const writers: StateWriter[] = [];
  const stores: Store[] = [];
  beforeAll(async () => {
    etcd = await startEtcdCluster();
  });
  afterAll(async () => {
    for (const w of writers) w.close();
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    await etcd?.close();
  });

  /** Two replicas on a fresh prefix. */
  async function replicas(opts: { hostsOf?: (i: number) => string[] } = {}): Promise<[StateWriter, StateWriter, Partitionable, Partitionable]> {
    const prefix = `w${++round}/`;
    const out: StateWriter[] = [];
    const ps: Partitionable[] = [];
    for (let i = 0; i < 2; i++) {
      const store = new Partitionable(await EtcdStore.open({ hosts: opts.hostsOf?.(i) ?? etcd.hosts, prefix, callTimeoutMs: 2000 }));
      const writer = new StateWriter({ store, log: log.child({ replica: i }), retryMs: 50 });
      await writer.load();
      stores.push(store);
      writers.push(writer);
      out.push(writer);
      ps.push(store);
    }
    return [out[0]!, out[1]!, ps[0]!, ps[1]!];
  }

  it('serves each other\'s declarations and rollout changes, announcing them as remote', async () => {
    const [a, b] = await replicas();
    const remote: RolloutState[] = [];
    b.on('rollout', (r, origin) => origin === 'remote' && remote.push(r));
    await a.putService('echo', serviceOf({ v1: 1, v2: 2 }), 'alice');
    await eventually(() => b.state.services.get('echo')?.stable === 'v1');
    const created = await b.createRollout({ service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] }, 'bob');
    await eventually(() => a.state.rollouts.get('echo')?.id === created.id);
    await a.rolloutEvent('echo', { type: 'promote', full: true }, 'alice');
    // A promotion changes the rollout and the service's stable in one commit: B gets both.
    await eventually(() => b.state.rollouts.get('echo')?.phase === 'Promoted' && b.state.services.get('echo')?.stable === 'v2');
    expect(remote.map((r) => r.phase)).toContain('Promoted');
    expect(a.serviceRevision('echo')).toBe(b.serviceRevision('echo'));
    await eventually(() => a.appliedRevision >= b.serviceRevision('echo') && b.appliedRevision >= a.serviceRevision('echo'));
    await b.deleteRollout('echo', 'bob');
    await eventually(() => !a.state.rollouts.has('echo'));
    await a.deleteService('echo', 'alice');
    await eventually(() => !b.state.services.has('echo'));
  });

  it('lets exactly one of two conflicting declarations win, naming the owner to the other, round after round', async () => {
    const [a, b] = await replicas();
    for (let i = 0; i < 10; i++) {
      // "x-y" + version "z" and "x" + version "y-z" both derive the cluster "x-y-z".
      const results = await Promise.allSettled([
        a.putService(`s${i}-a`, { versions: { v: { endpoints: [{ address: '10.0.0.1', port: 1 }], cluster: `shared-${i}` } }, stable: 'v' }, 'a'),
        b.putService(`s${i}-b`, { versions: { v: { endpoints: [{ address: '10.0.0.2', port: 1 }], cluster: `shared-${i}` } }, stable: 'v' }, 'b'),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won, `round ${i}`).toHaveLength(1);
      expect(lost[0]!.reason.message).toMatch(new RegExp(`cluster "shared-${i}" of version "v" is already used by service "s${i}-[ab]" version "v"`));
      await eventually(() => [a, b].every((w) => [...w.state.services.values()].filter((s) => s.versions.v?.cluster === `shared-${i}`).length === 1));
    }
    expect([...a.state.services.keys()].sort()).toEqual([...b.state.services.keys()].sort());
  });

  it('never lets one replica\'s rollout transition overwrite the other\'s: concurrent actions apply in turn', async () => {
    const [a, b] = await replicas();
    await a.putService('svc', serviceOf({ v1: 1, v2: 2 }), 'a');
    await eventually(() => b.state.services.has('svc'));
    await a.createRollout({ service: 'svc', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 20 }, { pause: {} }, { setWeight: 30 }, { pause: {} }] }, 'a');
    await eventually(() => b.state.rollouts.get('svc')?.phase === 'Progressing');
    // Both replicas promote at the same time, from the same state: each promotion is applied
    // once, to the state the other left (none is lost, none overwrites the other).
    const [pa, pb] = await Promise.all([a.rolloutEvent('svc', { type: 'promote' }, 'alice'), b.rolloutEvent('svc', { type: 'promote' }, 'bob')]);
    // Step 0 (weight 10, waiting for the fleet) → step 1 (a pause) → step 2 (weight 20).
    expect(new Set([pa.step, pb.step])).toEqual(new Set([1, 2]));
    await eventually(() => a.state.rollouts.get('svc')?.canaryWeight === 20 && b.state.rollouts.get('svc')?.canaryWeight === 20);
    const steps = a.state.rollouts.get('svc')!.history.filter((h) => h.event === 'StepCompleted');
    expect(steps.map((h) => [h.step, h.by])).toEqual([
      [0, pa.step === 1 ? 'alice' : 'bob'],
      [1, pa.step === 1 ? 'bob' : 'alice'],
    ]);
  });

  it('refuses a fenced change once the fence key moved, without applying it again', async () => {
    const [a] = await replicas();
    await a.putService('f', serviceOf({ v1: 1, v2: 2 }), 'a');
    await a.createRollout({ service: 'f', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] }, 'a');
    const store = stores.at(-2)!;
    const { revision } = await store.commit([{ put: 'meta/fence', value: 1 }]);
    await store.commit([{ put: 'meta/fence', value: 2 }]);
    await expect(a.rolloutEvent('f', { type: 'promote' }, 'schedule', { fence: { 'meta/fence': revision } })).rejects.toThrow(
      'the change was not applied: meta/fence changed (this replica no longer holds it)',
    );
    expect(a.state.rollouts.get('f')!.canaryWeight).toBe(10);
  });

  it('applies a rollback the store refused to what the other replica did meanwhile, and both serve it', async () => {
    const [a, b, storeA] = await replicas();
    await a.putService('p', serviceOf({ v1: 1, v2: 2 }), 'a');
    await a.createRollout({ service: 'p', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }] }, 'a');
    await eventually(() => b.state.rollouts.get('p')?.phase === 'Progressing');
    storeA.down = true;
    await expect(a.rolloutEvent('p', { type: 'rollback', reason: 'cut off' }, 'alice')).rejects.toThrow('rolled back and pushed to the fleet, but not persisted');
    expect(a.state.rollouts.get('p')!.phase).toBe('RolledBack'); // A's fleet is rolled back
    expect(a.persistence().unpersisted).toEqual(['p']);
    await expect(a.putService('q', serviceOf({ v1: 5 }), 'a')).rejects.toThrow('the store cannot be written');
    // Meanwhile B, which still reaches etcd, moves the rollout on.
    await b.rolloutEvent('p', { type: 'promote' }, 'bob');
    expect(a.state.rollouts.get('p')!.phase).toBe('RolledBack'); // A keeps its rollback published
    storeA.down = false;
    // A's retry applies the rollback to B's state (weight 50): nothing B did is overwritten,
    // and the rollback wins on both replicas.
    await eventually(() => a.persistence().unpersisted.length === 0, 10_000);
    await eventually(() => b.state.rollouts.get('p')?.phase === 'RolledBack');
    const final = b.state.rollouts.get('p')!;
    expect(final.history.map((h) => h.by)).toEqual(expect.arrayContaining(['bob', 'alice']));
    expect(final.history.findIndex((h) => h.by === 'bob')).toBeLessThan(final.history.findIndex((h) => h.event === 'RolledBack'));
    expect(a.state.rollouts.get('p')).toEqual(final);
  });

  it('adopts what the store holds when the rollout was finished elsewhere while its rollback could not be stored', async () => {
    const [a, b, storeA] = await replicas();
    await a.putService('z', serviceOf({ v1: 1, v2: 2 }), 'a');
    await a.createRollout({ service: 'z', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] }, 'a');
    await eventually(() => b.state.rollouts.get('z')?.phase === 'Progressing');
    storeA.down = true;
    await expect(a.rolloutEvent('z', { type: 'rollback' }, 'alice')).rejects.toThrow('not persisted');
    await b.rolloutEvent('z', { type: 'promote', full: true }, 'bob');
    storeA.down = false;
    await eventually(() => a.persistence().unpersisted.length === 0, 10_000);
    expect(a.state.rollouts.get('z')!.phase).toBe('Promoted');
    expect(a.state.services.get('z')!.stable).toBe('v2');
  });
});

describe.skipIf(!etcdAvailable)('a replica whose watch missed changes', () => {
  it('re-reads everything when its member comes back after the history it needed was compacted', async () => {
    const etcd = await startEtcdCluster({ size: 3 });
    const writers: StateWriter[] = [];
    const stores: EtcdStore[] = [];
    try {
      const open = async (hosts: string[]) => {
        const store = await EtcdStore.open({ hosts, callTimeoutMs: 1000 });
        stores.push(store);
        const w = new StateWriter({ store, log });
        await w.load();
        writers.push(w);
        return w;
      };
      const a = await open([etcd.hosts[0]!]);
      const b = await open([etcd.hosts[1]!]);
      await b.putService('before', serviceOf({ v1: 1 }), 'b');
      await b.putService('gone', serviceOf({ v1: 2 }), 'b');
      await eventually(() => a.state.services.has('gone'));
      await etcd.stop(0);
      await b.putService('during', serviceOf({ v1: 3 }), 'b');
      await b.deleteService('gone', 'b');
      const admin = new Etcd3({ hosts: [etcd.hosts[1]!] });
      const { header } = await admin.getAll().prefix('sluice/').exec();
      await admin.kv.compact({ revision: header.revision, physical: true });
      admin.close();
      await etcd.start(0);
      await eventually(() => a.state.services.has('during') && !a.state.services.has('gone'), 20_000);
      expect([...a.state.services.keys()].sort()).toEqual(['before', 'during']);
      // And it keeps following.
      await b.putService('after', serviceOf({ v1: 4 }), 'b');
      await eventually(() => a.state.services.has('after'), 10_000);
    } finally {
      for (const w of writers) w.close();
      await Promise.all(stores.map((s) => s.close()));
      await etcd.close();
    }
  }, 60_000);
});
