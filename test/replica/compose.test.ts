// docker-compose.replicas.yml, checked without a Docker engine: Debian's docker-compose accepts
// it, the etcd members agree on one cluster, and the replicas reach every member, have their own
// ids and ports, and take options Sluice accepts.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const FILE = 'docker-compose.replicas.yml';
const DOCKER_COMPOSE = '/usr/bin/docker-compose';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
}

describe(FILE, () => {
  const haveParser = fs.existsSync(DOCKER_COMPOSE);
  it.skipIf(!haveParser && !process.env.CI)(`is accepted by \`docker-compose config\`${haveParser ? '' : ` (skipped: ${DOCKER_COMPOSE} is not installed)`}`, async () => {
    const { stderr } = await run(DOCKER_COMPOSE, ['-f', FILE, 'config', '-q'], { cwd: ROOT });
    expect(stderr).toBe('');
  });

  // The file as compose reads it: anchors and merge keys resolved.
  const services = (parse(fs.readFileSync(path.join(ROOT, FILE), 'utf8'), { merge: true }) as { services: Record<string, Service> }).services;
  const flag = (command: string[] | undefined, name: string) => command?.[command.indexOf(name) + 1];
  const etcd = Object.keys(services).filter((n) => n.startsWith('etcd-'));
  const replicas = Object.keys(services).filter((n) => n.startsWith('sluice-'));

  it('runs three etcd members that agree on one cluster of themselves', () => {
    expect(etcd).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
    for (const name of etcd) {
      const s = services[name]!;
      expect(flag(s.command, '--name')).toBe(name);
      const cluster = Object.fromEntries(s.environment!.ETCD_INITIAL_CLUSTER!.split(',').map((m) => m.split('=') as [string, string]));
      expect(Object.keys(cluster)).toEqual(etcd);
      expect(flag(s.command, '--initial-advertise-peer-urls')).toBe(cluster[name]);
      expect(flag(s.command, '--advertise-client-urls')).toBe(`http://${name}:2379`);
    }
  });

  it('runs two replicas on every etcd member, each with its own id and ports, with options Sluice accepts', () => {
    expect(replicas).toEqual(['sluice-a', 'sluice-b']);
    const ids = new Set<string>();
    const published = new Set<string>();
    for (const name of replicas) {
      const s = services[name]!;
      const [command, ...argv] = s.command!;
      expect(command).toBe('serve');
      const config = parseConfig(argv, s.environment);
      expect(config.store!.hosts.sort()).toEqual(etcd.map((e) => `http://${e}:2379`));
      expect(config.host).toBe('0.0.0.0');
      ids.add(config.replicaId!);
      for (const p of s.ports!) published.add(p.split(':').slice(0, 2).join(':'));
      for (const p of s.ports!) expect(p).toMatch(/^127\.0\.0\.1:/);
    }
    expect([...ids]).toEqual(replicas);
    expect(published.size).toBe(4);
  });
});
