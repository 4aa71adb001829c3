// The xDS port's certificates are reloaded without a restart: a rotated server certificate is
// what the next client sees, a CA bundle that adds a CA admits that CA's clients, streams opened
// before keep working, and a broken file keeps the certificates in use.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypeUrl } from '../../src/xds/protos.js';
import { SotwClient } from '../support/ads-client.js';
import type { Issued } from '../support/certs.js';
import { TestCa } from '../support/certs.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';
import type { LoggedSluice } from './support.js';
import { clientCreds, replaceFile, startLoggedSluice } from './support.js';

let dir: string;
let ca1: TestCa;
let live: { cert: string; key: string; ca: string };
let sluice: LoggedSluice;
const opened: SotwClient[] = [];

const fingerprint = (i: Issued) => new X509Certificate(i.certPem).fingerprint256;

/** Connects anew (a connection of its own) as `who` trusting `trust`; resolves with the server
 *  certificate's fingerprint once the first CDS response came, or rejects with the call's status. */
async function handshake(trust: Buffer, who: Issued): Promise<string> {
  let seen = '';
  const c = SotwClient.open(sluice.xdsPort, { node: { id: 'probe', user_agent_name: 'envoy' }, credentials: clientCreds(trust, who, (cert) => (seen = cert.fingerprint256)) });
  try {
    c.subscribe(TypeUrl.Cluster, []);
    try {
      await c.next(5000, TypeUrl.Cluster);
    } catch (err) {
      const s = await Promise.race([c.status, new Promise<undefined>((r) => setTimeout(r, 1000))]);
      throw s ? Object.assign(new Error(s.details), { code: s.code }) : err;
    }
    return seen;
  } finally {
    c.cancel();
  }
}

beforeAll(async () => {
  dir = tempDir('sluice-rotation-');
  ca1 = new TestCa(dir, 'ca1');
  const first = ca1.server('server-1');
  fs.mkdirSync(path.join(dir, 'live'));
  live = { cert: path.join(dir, 'live', 'tls.crt'), key: path.join(dir, 'live', 'tls.key'), ca: path.join(dir, 'live', 'ca.crt') };
  fs.copyFileSync(first.cert, live.cert);
  fs.copyFileSync(first.key, live.key);
  fs.copyFileSync(ca1.cert, live.ca);
  sluice = await startLoggedSluice({ xdsTlsCert: live.cert, xdsTlsKey: live.key, xdsTlsCa: live.ca });
  expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 7000, v2: 7001 }))).status).toBe(201);
});

afterAll(async () => {
  for (const c of opened) c.cancel();
  await sluice?.stop();
});

describe('certificate rotation without a restart', () => {
  it('serves a rotated server certificate to new clients; an open stream keeps working', async () => {
    const client = ca1.issue('client-a', { cn: 'node-a' });
    const first = new X509Certificate(fs.readFileSync(live.cert)).fingerprint256;
    expect(await handshake(ca1.pem, client)).toBe(first);
    const held = SotwClient.open(sluice.xdsPort, { node: { id: 'held', user_agent_name: 'envoy' }, credentials: clientCreds(ca1.pem, client) });
    opened.push(held);
    held.subscribe(TypeUrl.Cluster, []);
    held.ack(await held.next(5000, TypeUrl.Cluster));

    const second = ca1.server('server-2');
    // Key first, then certificate, as a careless deploy would: the pair never half-applies.
    replaceFile(live.key, second.keyPem);
    replaceFile(live.cert, second.certPem);
    await eventually(async () => (await handshake(ca1.pem, client)) === fingerprint(second), 15_000, 200);
    expect(sluice.lines.some((l) => l.msg === 'xDS TLS certificates reloaded' && l.fingerprint256 === fingerprint(second))).toBe(true);

    // The stream opened under the first certificate is still served.
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: 7000, v2: 7001, v3: 7002 }))).status).toBe(200);
    expect((await held.next(5000, TypeUrl.Cluster)).names).toContain('echo-v3');
  });

  it('admits clients of a CA added to the CA file', async () => {
    const ca2 = new TestCa(dir, 'ca2');
    const newcomer = ca2.issue('client-b', { cn: 'node-b' });
    await expect(handshake(ca1.pem, newcomer)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    replaceFile(live.ca, Buffer.concat([ca1.pem, ca2.pem]));
    await eventually(async () => !!(await handshake(ca1.pem, newcomer)), 15_000, 200);
    expect(await handshake(ca1.pem, ca1.issue('client-c', { cn: 'node-c' }))).toBeTruthy(); // the first CA's clients still are
  });

  it('keeps the certificates in use when a new file is broken, and says why', async () => {
    const client = ca1.issue('client-d', { cn: 'node-d' });
    const inUse = await handshake(ca1.pem, client);
    replaceFile(live.cert, 'not a certificate\n');
    const refused = await eventually(() => sluice.lines.find((l) => l.msg === 'xDS TLS certificates not reloaded: keeping the ones in use'), 15_000);
    expect(refused).toMatchObject({ level: 50, fingerprint256: inUse });
    expect(String(refused.problem)).toMatch(/^--xds-tls-cert .*tls\.crt: not a PEM certificate/);
    expect(await handshake(ca1.pem, client)).toBe(inUse);
  });
});
