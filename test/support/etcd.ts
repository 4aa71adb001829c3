// Real etcd members on loopback for tests: a 1- or 3-member cluster on random ports with temp
// data dirs. Members can be stopped, killed and started again (same ports, same data) to take
// quorum away and give it back. Debian's etcd-server (scripts/install-test-deps.sh).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { freePort } from './process.js';

export const ETCD = '/usr/bin/etcd';
/** In CI a missing etcd is a failure (install-test-deps.sh installs it), not a skip. */
export const etcdAvailable = fs.existsSync(ETCD) || !!process.env.CI;

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  /** Plain-HTTP /health and /metrics, also when clients talk TLS. */
  metricsUrl: string;
  dataDir: string;
  process?: ChildProcess;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Client URLs of every member. */
  hosts: string[];
  /** Stops one member (SIGTERM, or SIGKILL) and waits for it to exit. */
  stop(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again with its data; waits until it answers. */
  start(i: number): Promise<void>;
  /** Kills every member and removes the data. */
  close(): Promise<void>;
}

export interface EtcdClusterOptions {
  size?: 1 | 3;
  /** Serve clients over TLS with this certificate; with `clientCa`, require client certificates it signed. */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
}

export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < (opts.size ?? 1); i++)
    members.push({
      name: `m${i}`,
      clientUrl: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      metricsUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: path.join(root, `m${i}`),
    });
  const tlsArgs = opts.tls
    ? ['--cert-file', opts.tls.certFile, '--key-file', opts.tls.keyFile,
       ...(opts.tls.clientCaFile ? ['--client-cert-auth', '--trusted-ca-file', opts.tls.clientCaFile] : [])]
    : [];
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = crypto.randomUUID();

  const launch = (m: EtcdMember) => {
    m.process = spawn(
      ETCD,
      [
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
        '--listen-metrics-urls', m.metricsUrl, ...tlsArgs,
        '--logger', 'zap', '--log-level', 'error',
        // Fast elections, so tests that stop members do not wait long for a new leader.
        '--heartbeat-interval', '50', '--election-timeout', '500',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    m.process.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    m.process.once('exit', (code, signal) => {
      if (code && code !== 0) console.error(`etcd ${m.name} exited with ${code ?? signal}: ${stderr}`);
    });
  };

  const exited = (m: EtcdMember) =>
    !m.process || m.process.exitCode !== null || m.process.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => m.process!.once('exit', () => r()));

  const cluster: EtcdCluster = {
    members,
    hosts: members.map((m) => m.clientUrl),
    async stop(i, signal = 'SIGTERM') {
      const m = members[i]!;
      m.process?.kill(signal);
      await exited(m);
      m.process = undefined;
    },
    async start(i) {
      const m = members[i]!;
      if (m.process) return;
      launch(m);
      await answering(m);
    },
    async close() {
      for (const m of members) m.process?.kill('SIGKILL');
      await Promise.all(members.map(exited));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };

  members.forEach(launch);
  try {
    await Promise.all(members.map((m) => healthy(m)));
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

/** Waits until the member's /health says true (it has a leader and quorum). */
async function healthy(m: EtcdMember, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (m.process?.exitCode !== null && m.process?.exitCode !== undefined) throw new Error(`etcd ${m.name} exited while starting`);
    try {
      const res = await fetch(`${m.metricsUrl}/health`);
      if (res.ok && (await res.json()).health === 'true') return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`etcd ${m.name} at ${m.clientUrl} did not become healthy`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the member accepts connections (it may lack quorum). */
async function answering(m: EtcdMember, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(`${m.metricsUrl}/health`);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`etcd ${m.name} at ${m.clientUrl} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
