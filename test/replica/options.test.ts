// The replica options: --store and the etcd flags parse (or say what is wrong, never echoing a
// credential), and a server started against an etcd with authentication uses the password
// from a file without ever writing it to its logs.
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { etcdPassword, parseConfig } from '../../src/config.js';
import { etcdAvailable, startEtcdCluster } from '../support/etcd.js';
import { freePort, spawnSluice } from '../support/process.js';
import { serviceOf, tempDir } from '../support/sluice.js';

describe('replica options', () => {
  it('reads etcd endpoints from --store or SLUICE_STORE, TLS with etcds://', () => {
    expect(parseConfig(['--store', 'etcd://10.0.0.1:2379,10.0.0.2:2379']).store).toEqual({ kind: 'etcd', hosts: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'] });
    expect(parseConfig([], { SLUICE_STORE: 'etcds://etcd-0.etcd:2379' }).store).toEqual({ kind: 'etcd', hosts: ['https://etcd-0.etcd:2379'] });
    expect(parseConfig(['--store', 'https://a:2379,https://b:2379']).store!.hosts).toEqual(['https://a:2379', 'https://b:2379']);
    const c = parseConfig(['--store', 'etcd://a:1']);
    expect([c.etcdPrefix, c.leaseTtl, c.etcdTimeout, c.replicaId]).toEqual(['sluice/', '10s', '2s', undefined]);
    expect(parseConfig([]).store).toBeUndefined(); // the file store in --data-dir
  });

  it('says what is wrong, naming the flag and never the credentials', () => {
    expect(() => parseConfig(['--store', 'etcd://a'])).toThrow('--store: "a": expected etcd://host:port,host:port');
    expect(() => parseConfig(['--store', 'etcd://bob:hunter2@a:2379'])).toThrow(/^--store: "a:2379": expected .*credentials go in --etcd-user and --etcd-password\)$/);
    expect(() => parseConfig(['--store', 'etcd://bob:hunter2@a:2379'])).not.toThrow(/hunter2/);
    expect(() => parseConfig(['--store', 'zookeeper://a:1'])).toThrow('--store: "a:1": expected etcd://');
    expect(() => parseConfig(['--etcd-user', 'sluice', '--etcd-password', 'pw'])).toThrow('--etcd-user needs --store etcd://host:port,...');
    expect(() => parseConfig(['--store', 'etcd://a:1', '--etcd-user', 'sluice'])).toThrow('--etcd-user needs --etcd-password');
    expect(() => parseConfig(['--store', 'etcd://a:1', '--etcd-ca', 'ca.pem'])).toThrow('use etcds://host:port');
    expect(() => parseConfig(['--store', 'etcds://a:1', '--etcd-cert', 'c.pem'])).toThrow('--etcd-cert and --etcd-key go together');
    expect(() => parseConfig(['--store', 'etcd://a:1', '--replica-id', 'no spaces'])).toThrow('--replica-id: must be 1-128 letters');
    expect(() => parseConfig(['--store', 'etcd://a:1', '--lease-ttl', '1500ms'])).toThrow('--lease-ttl: must be whole seconds');
    expect(() => parseConfig(['--store', 'etcd://a:1', '--lease-ttl', 'soon'])).toThrow(/^--lease-ttl: invalid duration "soon"/);
    expect(() => parseConfig(['--store', 'etcd://a:1', '--etcd-prefix', 'sluice'])).toThrow('--etcd-prefix: must be letters');
    let message = '';
    try {
      parseConfig(['--store', 'etcd://a:1', '--etcd-user', 'u', '--etcd-password', 'hunter2', '--etcd-password-file', '/x']);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('give --etcd-password or --etcd-password-file, not both');
  });

  it('takes the password from a file (first line) or SLUICE_ETCD_PASSWORD', () => {
    const file = path.join(tempDir(), 'pw');
    fs.writeFileSync(file, 's3cret\n');
    expect(etcdPassword(parseConfig(['--store', 'etcd://a:1', '--etcd-user', 'u', '--etcd-password-file', file]))).toBe('s3cret');
    expect(etcdPassword(parseConfig(['--store', 'etcd://a:1', '--etcd-user', 'u'], { SLUICE_ETCD_PASSWORD: 'from-env' }))).toBe('from-env');
  });

  it.skipIf(!etcdAvailable)('serves from an etcd with authentication, never logging the password; refuses a wrong password and a replica id in use', async () => {
    const etcd = await startEtcdCluster();
    const dir = tempDir();
    try {
      const admin = new Etcd3({ hosts: etcd.hosts });
      const root = await admin.user('root').create('root-pw-7f3a');
      await root.addRole('root');
      const user = await admin.user('sluice').create('sluice-pw-91c2');
      const role = await admin.role('sluice').create();
      await role.grant({ permission: 'Readwrite', range: admin.range({ prefix: 'sluice/' }) });
      await user.addRole(role);
      await admin.auth.authEnable({});
      admin.close();
      const passwordFile = path.join(dir, 'etcd-password');
      fs.writeFileSync(passwordFile, 'sluice-pw-91c2\n', { mode: 0o600 });
      const store = `etcd://${etcd.hosts[0]!.replace('http://', '')}`;
      const ports = { httpPort: await freePort(), xdsPort: await freePort() };
      const sluice = await spawnSluice({
        dataDir: dir,
        ...ports,
        captureLogs: true,
        extra: ['--store', store, '--etcd-user', 'sluice', '--etcd-password-file', passwordFile, '--log-level', 'debug', '--lease-ttl', '1s'],
      });
      try {
        expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 1 }))).status).toBe(201);
        const leader = (await sluice.api('GET', '/v1/status')).body.replicas.leader as string;
        expect(leader).toMatch(/-\d+$/); // <hostname>-<pid>
        // A second replica under the same id is refused once the first's lease proves alive.
        const again = { httpPort: await freePort(), xdsPort: await freePort() };
        await expect(
          spawnSluice({ dataDir: tempDir(), ...again, captureLogs: true, extra: ['--store', store, '--etcd-user', 'sluice', '--etcd-password-file', passwordFile, '--replica-id', leader, '--lease-ttl', '1s'] }),
        ).rejects.toThrow(`replica id "${leader}" is in use by a live replica`);
      } finally {
        await sluice.kill('SIGTERM');
      }
      expect(sluice.logs()).toContain('sluice started');
      expect(sluice.logs()).not.toContain('sluice-pw-91c2');

      await expect(
        spawnSluice({ dataDir: dir, ...ports, captureLogs: true, extra: ['--store', store, '--etcd-user', 'sluice', '--etcd-password', 'wrong-pw-55d1'] }),
      ).rejects.toThrow(/sluice exited with 1 while starting: .*etcd at http:\/\/127\.0\.0\.1:\d+ refused this client/s);
    } finally {
      await etcd.close();
    }
  }, 60_000);
});
