// Test certificates made by openssl: a CA that issues server certificates for 127.0.0.1/localhost
// and client certificates with the URI SANs and CN a test asks for.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Issued {
  /** File paths. */
  cert: string;
  key: string;
  /** File contents (PEM). */
  certPem: Buffer;
  keyPem: Buffer;
}

export interface IssueOptions {
  cn?: string;
  /** URI SANs, e.g. a SPIFFE id. */
  uris?: string[];
  dns?: string[];
  ips?: string[];
}

let serial = 1;

export class TestCa {
  readonly cert: string;
  readonly key: string;

  constructor(
    readonly dir: string,
    readonly name = 'test-ca',
  ) {
    this.cert = path.join(dir, `${name}.crt`);
    this.key = path.join(dir, `${name}.key`);
    this.ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', this.key, '-out', this.cert);
  }

  get pem(): Buffer {
    return fs.readFileSync(this.cert);
  }

  /** A certificate and key signed by this CA, written as `<file>.crt` / `<file>.key` in the CA's dir. */
  issue(file: string, opts: IssueOptions): Issued {
    const cert = path.join(this.dir, `${file}.crt`);
    const key = path.join(this.dir, `${file}.key`);
    const csr = path.join(this.dir, `${file}.csr`);
    const ext = path.join(this.dir, `${file}.ext`);
    const alt = [
      ...(opts.uris ?? []).map((u, i) => `URI.${i + 1} = ${u}`),
      ...(opts.dns ?? []).map((d, i) => `DNS.${i + 1} = ${d}`),
      ...(opts.ips ?? []).map((a, i) => `IP.${i + 1} = ${a}`),
    ];
    fs.writeFileSync(ext, alt.length ? `[ext]\nsubjectAltName = @alt\n[alt]\n${alt.join('\n')}\n` : '[ext]\nbasicConstraints = CA:FALSE\n');
    this.ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', opts.cn ? `/CN=${opts.cn}` : '/O=sluice-test', '-keyout', key, '-out', csr);
    this.ssl('x509', '-req', '-in', csr, '-CA', this.cert, '-CAkey', this.key, '-set_serial', String(Date.now() * 1000 + serial++), '-days', '1', '-extfile', ext, '-extensions', 'ext', '-out', cert);
    return { cert, key, certPem: fs.readFileSync(cert), keyPem: fs.readFileSync(key) };
  }

  /** A server certificate for 127.0.0.1 and localhost. */
  server(file = 'server', cn = 'server'): Issued {
    return this.issue(file, { cn, dns: ['localhost'], ips: ['127.0.0.1'] });
  }

  private ssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'ignore' });
  }
}

export interface TestCerts {
  dir: string;
  /** File paths, for servers that take files. */
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
}

/** A CA with one server and one client certificate (CN=client). */
export function makeCerts(dir: string): TestCerts {
  const ca = new TestCa(dir, 'ca');
  const server = ca.server();
  const client = ca.issue('client', { cn: 'client', dns: ['localhost'], ips: ['127.0.0.1'] });
  return {
    dir,
    files: { ca: ca.cert, serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key },
    ca: ca.pem,
    clientCert: client.certPem,
    clientKey: client.keyPem,
  };
}
