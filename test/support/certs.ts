// A test CA with a server and a client certificate for 127.0.0.1/localhost, made by openssl.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCerts {
  dir: string;
  /** File paths, for servers that take files. */
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
}

export function makeCerts(dir: string): TestCerts {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', `${who}.key`, '-out', `${who}.csr`);
    ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'san.ext', '-out', `${who}.crt`);
  }
  const file = (f: string) => path.join(dir, f);
  return {
    dir,
    files: { ca: file('ca.crt'), serverCert: file('server.crt'), serverKey: file('server.key'), clientCert: file('client.crt'), clientKey: file('client.key') },
    ca: fs.readFileSync(file('ca.crt')),
    clientCert: fs.readFileSync(file('client.crt')),
    clientKey: fs.readFileSync(file('client.key')),
  };
}
