// EtcdStore against real etcd members on loopback: the same contract as the file store
// (revisions, expectations, atomic commits, quarantine), across two clients standing for two
// replicas, watches, TLS and password auth, and what a lost member or a lost quorum does.
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../src/store/etcd-store.js';
import type { StoreChange } from '../../src/store/store.js';
import { StoreConflictError, StoreUnavailableError } from '../../src/store/store.js';
import { makeCerts } from '../support/certs.js';
import type { EtcdCluster } from '../support/etcd.js';
import { etcdAvailable, startEtcdCluster } from '../support/etcd.js';
import { tempDir } from '../support/sluice.js';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!etcdAvailable)('EtcdStore on one etcd member', () => {
  let etcd: EtcdCluster;
  let prefixCounter = 0;
  /** Two stores on the same prefix: two replicas. */
  const replicas = async () => {
    const prefix = `t${++prefixCounter}/`;
    return [await EtcdStore.open({ hosts: etcd.hosts, prefix }), await EtcdStore.open({ hosts: etcd.hosts, prefix })] as const;
  };
  beforeAll(async () => {
    etcd = await startEtcdCluster();
  });
  afterAll(async () => {
    await etcd?.close();
  });

  it('reads, lists sorted by key, and commits several keys at one revision', async () => {
    const [a, b] = await replicas();
    const { revision } = await a.commit([
      { put: 'services/b', value: { n: 2 } },
      { put: 'services/a', value: { n: 1 } },
      { put: 'rollouts/a', value: { r: 1 } },
    ]);
    expect(await b.entries('services/')).toEqual([
      { key: 'services/a', value: { n: 1 }, revision },
      { key: 'services/b', value: { n: 2 }, revision },
    ]);
    expect(await b.read('rollouts/a')).toEqual({ value: { r: 1 }, revision });
    const { revision: r2 } = await b.commit([{ delete: 'services/b' }]);
    expect(r2).toBeGreaterThan(revision);
    expect(await a.read('services/b')).toBeUndefined();
    await Promise.all([a.close(), b.close()]);
  });

  it('fails a commit whose expectation another replica broke, naming the key, and writes nothing', async () => {
    const [a, b] = await replicas();
    const { revision } = await a.commit([{ put: 'services/a', value: 1 }]);
    await b.commit([{ put: 'services/a', value: 2 }], { 'services/a': revision });
    const stale = a.commit([{ put: 'services/a', value: 3 }, { put: 'rollouts/a', value: 3 }], { 'services/a': revision });
    await expect(stale).rejects.toBeInstanceOf(StoreConflictError);
    await expect(stale).rejects.toThrow(`store conflict on services/a: expected revision ${revision}, found revision `);
    await expect(a.commit([{ put: 'services/a', value: 3 }], { 'services/a': 0 })).rejects.toThrow(/services\/a: expected absent, found revision/);
    await expect(a.commit([{ put: 'rollouts/a', value: 3 }], { 'services/zzz': 7 })).rejects.toThrow(
      'store conflict on services/zzz: expected revision 7, found absent',
    );
    expect((await a.read('services/a'))!.value).toBe(2);
    expect(await a.read('rollouts/a')).toBeUndefined();
    expect(a.health()).toEqual({ ok: true });
    await Promise.all([a.close(), b.close()]);
  });

  it('lets exactly one of two replicas racing on the same revision win, many times over', async () => {
    const [a, b] = await replicas();
    let { revision } = await a.commit([{ put: 'services/a', value: 0 }]);
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled([a, b].map((s, i) => s.commit([{ put: 'services/a', value: { round, i } }], { 'services/a': revision })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      revision = (await a.read('services/a'))!.revision;
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('treats Object.prototype names as ordinary keys', async () => {
    const [a, b] = await replicas();
    for (const name of ['constructor', 'hasOwnProperty', '__proto__'.replace(/_/g, 'x'), 'toString', 'valueOf']) {
      expect(await a.read(`services/${name}`)).toBeUndefined();
      await a.commit([{ put: `services/${name}`, value: { name } }], { [`services/${name}`]: 0 });
      expect((await b.read(`services/${name}`))!.value).toEqual({ name });
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('reports changes made by another replica to watchers, and resumes after a revision', async () => {
    const [a, b] = await replicas();
    const seen: StoreChange[] = [];
    const stop = a.watch('services/', (c) => seen.push(c));
    await until('watch started', async () => {
      await b.commit([{ put: 'services/probe', value: 0 }]);
      return seen.length > 0;
    });
    const { revision: r1 } = await b.commit([{ put: 'services/x', value: { v: 1 } }, { put: 'rollouts/x', value: 1 }]);
    const { revision: r2 } = await b.commit([{ delete: 'services/x' }]);
    await until('both changes', () => seen.some((c) => c.revision === r2));
    expect(seen.filter((c) => c.key !== 'services/probe')).toEqual([
      { key: 'services/x', revision: r1, value: { v: 1 } },
      { key: 'services/x', revision: r2 },
    ]);
    stop();
    // A replica that read up to r1 resumes from there and misses nothing.
    const resumed: StoreChange[] = [];
    const stopResumed = a.watch('services/', (c) => resumed.push(c), { afterRevision: r1 });
    await until('the resumed change', () => resumed.length >= 1);
    expect(resumed[0]).toEqual({ key: 'services/x', revision: r2 });
    stopResumed();
    await Promise.all([a.close(), b.close()]);
  });

  it('quarantines a value so no replica serves it, guarded by its revision', async () => {
    const [a, b] = await replicas();
    const { revision } = await a.commit([{ put: 'rollouts/echo', value: {} }]);
    await expect(b.quarantine('rollouts/echo', 'not a rollout', revision + 1)).rejects.toBeInstanceOf(StoreConflictError);
    const entry = await b.quarantine('rollouts/echo', 'not a rollout: missing service', revision);
    expect(entry).toMatchObject({ key: 'rollouts/echo', reason: 'not a rollout: missing service', file: expect.stringMatching(/rollouts\/echo$/) });
    expect(await a.read('rollouts/echo')).toBeUndefined();
    expect(await a.entries('')).toEqual([]);
    expect(await a.quarantined()).toEqual([entry]);
    await expect(a.quarantine('rollouts/echo', 'again')).rejects.toThrow(/no such key/);
    await Promise.all([a.close(), b.close()]);
  });
});

describe.skipIf(!etcdAvailable)('EtcdStore when etcd fails', () => {
  it('refuses writes with StoreUnavailableError while etcd is down, and heals when it is back', async () => {
    const etcd = await startEtcdCluster();
    try {
      const store = await EtcdStore.open({ hosts: etcd.hosts, callTimeoutMs: 1_000 });
      await store.commit([{ put: 'services/a', value: 1 }]);
      await etcd.stop(0);
      const started = Date.now();
      const failed = store.commit([{ put: 'services/a', value: 2 }]);
      await expect(failed).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(failed).rejects.toMatchObject({ code: 'EUNAVAILABLE', message: expect.stringContaining(`etcd at ${etcd.hosts[0]}`) });
      console.log(`commit against a stopped etcd failed after ${Date.now() - started} ms (call timeout 1000 ms)`);
      expect(store.health()).toMatchObject({ ok: false, message: expect.stringContaining('etcd at') });
      await expect(EtcdStore.open({ hosts: etcd.hosts, callTimeoutMs: 1_000 })).rejects.toBeInstanceOf(StoreUnavailableError);

      await etcd.start(0);
      await until('a commit succeeds again', () => store.commit([{ put: 'services/a', value: 3 }]).then(() => true, () => false), 20_000);
      expect(store.health()).toEqual({ ok: true });
      expect((await store.read('services/a'))!.value).toBe(3);
      await store.close();
    } finally {
      await etcd.close();
    }
  }, 60_000);

  it('keeps working with one of three members down; without quorum, fails writes until it returns', async () => {
    const etcd = await startEtcdCluster({ size: 3 });
    try {
      const store = await EtcdStore.open({ hosts: etcd.hosts, callTimeoutMs: 1_000 });
      await store.commit([{ put: 'services/a', value: 1 }]);
      await etcd.stop(0, 'SIGKILL');
      await until('a commit with two members', () => store.commit([{ put: 'services/a', value: 2 }]).then(() => true, () => false), 20_000);
      await etcd.stop(1, 'SIGKILL');
      const started = Date.now();
      await expect(store.commit([{ put: 'services/a', value: 3 }])).rejects.toMatchObject({ name: 'StoreUnavailableError', code: 'EUNAVAILABLE' });
      console.log(`commit without quorum failed after ${Date.now() - started} ms (call timeout 1000 ms)`);
      expect(store.health().ok).toBe(false);
      await etcd.start(1);
      await until('quorum is back', () => store.commit([{ put: 'services/a', value: 4 }]).then(() => true, () => false), 30_000);
      expect((await store.read('services/a'))!.value).toBe(4);
      expect(store.health()).toEqual({ ok: true });
      await store.close();
    } finally {
      await etcd.close();
    }
  }, 90_000);
});

describe.skipIf(!etcdAvailable)('EtcdStore security', () => {
  it('talks mutual TLS to etcd', async () => {
    const certs = makeCerts(tempDir());
    const etcd = await startEtcdCluster({ tls: { certFile: certs.files.serverCert, keyFile: certs.files.serverKey, clientCaFile: certs.files.ca } });
    try {
      const store = await EtcdStore.open({ hosts: etcd.hosts, tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
      await store.commit([{ put: 'services/a', value: 1 }]);
      expect((await store.read('services/a'))!.value).toBe(1);
      await store.close();
      // Without a client certificate, etcd refuses the connection.
      await expect(EtcdStore.open({ hosts: etcd.hosts, tls: { ca: certs.ca }, callTimeoutMs: 1_000 })).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await etcd.close();
    }
  }, 60_000);

  it('authenticates with a user and password, and says so when they are wrong', async () => {
    const etcd = await startEtcdCluster();
    try {
      const admin = new Etcd3({ hosts: etcd.hosts });
      const root = await admin.user('root').create('root-pw');
      await root.addRole('root');
      const sluice = await admin.user('sluice').create('sluice-pw');
      const role = await admin.role('sluice').create();
      await role.grant({ permission: 'Readwrite', range: admin.range({ prefix: 'sluice/' }) });
      await sluice.addRole(role);
      await admin.auth.authEnable({});
      admin.close();

      const store = await EtcdStore.open({ hosts: etcd.hosts, auth: { username: 'sluice', password: 'sluice-pw' } });
      await store.commit([{ put: 'services/a', value: 1 }]);
      expect((await store.read('services/a'))!.value).toBe(1);
      await store.close();
      await expect(EtcdStore.open({ hosts: etcd.hosts, auth: { username: 'sluice', password: 'wrong' } })).rejects.toMatchObject({
        name: 'StoreUnavailableError',
        code: 'EACCES',
      });
      // A user without rights on the prefix.
      await expect(EtcdStore.open({ hosts: etcd.hosts, prefix: 'other/', auth: { username: 'sluice', password: 'sluice-pw' } })).rejects.toMatchObject({
        code: 'EACCES',
      });
    } finally {
      await etcd.close();
    }
  }, 60_000);
});
