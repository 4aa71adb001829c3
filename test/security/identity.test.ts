// A client's identity from the certificate it presents: real certificates made by openssl, read
// on the server side of a real TLS handshake (the same PeerCertificate grpc-js hands over).
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityOf, parseAltNames } from '../../src/security/identity.js';
import type { Issued } from '../support/certs.js';
import { TestCa } from '../support/certs.js';
import { tempDir } from '../support/sluice.js';

let ca: TestCa;
let server: tls.Server;
let pending: ((cert: tls.PeerCertificate) => void)[] = [];

/** The PeerCertificate the server side sees when `who` connects. */
async function presented(who: Issued): Promise<tls.PeerCertificate> {
  const seen = new Promise<tls.PeerCertificate>((resolve) => pending.push(resolve));
  const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: ca.pem, cert: who.certPem, key: who.keyPem, checkServerIdentity: () => undefined });
  socket.on('error', () => undefined);
  try {
    return await seen;
  } finally {
    socket.destroy();
  }
}

beforeAll(async () => {
  ca = new TestCa(tempDir('sluice-identity-'));
  const srv = ca.server();
  server = tls.createServer({ cert: srv.certPem, key: srv.keyPem, ca: ca.pem, requestCert: true, rejectUnauthorized: true }, (socket) => {
    pending.shift()?.(socket.getPeerCertificate());
    socket.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  pending = [];
  await new Promise((r) => server?.close(r));
});

describe('identity from a client certificate', () => {
  it('is the URI SAN (a SPIFFE id) when there is one, even beside a CN and DNS names', async () => {
    const cert = await presented(ca.issue('spiffe', { cn: 'web', uris: ['spiffe://example.org/ns/shop/sa/web'], dns: ['web.shop'] }));
    expect(identityOf(cert)).toEqual({ identity: 'spiffe://example.org/ns/shop/sa/web', from: 'uri-san' });
  });

  it('is the subject CN when there is no URI SAN', async () => {
    const cert = await presented(ca.issue('cn-only', { cn: 'ops-admin', dns: ['ops.local'] }));
    expect(identityOf(cert)).toEqual({ identity: 'ops-admin', from: 'cn' });
  });

  it('reads a URI SAN that holds a comma (Node quotes it) whole', async () => {
    const cert = await presented(ca.issue('comma', { uris: ['spiffe://example.org/a,b'], cn: 'x' }));
    expect(cert.subjectaltname).toContain('"'); // the form parseAltNames must undo
    expect(identityOf(cert)).toEqual({ identity: 'spiffe://example.org/a,b', from: 'uri-san' });
  });

  it('refuses an ambiguous certificate (two URI SANs) and one that names nobody', async () => {
    const two = await presented(ca.issue('two-uris', { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] }));
    expect(identityOf(two)).toEqual({ problem: 'the client certificate has 2 URI SANs; an identity needs exactly one (a SPIFFE id)' });
    const none = await presented(ca.issue('nameless', { dns: ['only.dns'] }));
    expect(identityOf(none)).toEqual({ problem: 'the client certificate has neither a URI SAN nor a subject CN' });
  });
});

describe("parsing Node's subjectaltname", () => {
  it('splits entries and undoes JSON quoting', () => {
    expect(parseAltNames('URI:spiffe://a/b, DNS:x, IP Address:127.0.0.1, URI:"http://q/a\\u002cb, c"')).toEqual([
      { type: 'URI', value: 'spiffe://a/b' },
      { type: 'DNS', value: 'x' },
      { type: 'IP Address', value: '127.0.0.1' },
      { type: 'URI', value: 'http://q/a,b, c' },
    ]);
    expect(parseAltNames('')).toEqual([]);
  });

  it('throws on text that is not in that form', () => {
    expect(() => parseAltNames('URI:"open')).toThrow(/unterminated/);
    expect(() => parseAltNames('no type here')).toThrow(/without a type/);
    expect(() => parseAltNames('URI:"a"x')).toThrow(/unexpected character/);
  });
});
