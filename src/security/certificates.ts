// The xDS port's TLS material (server certificate and key, and the CA that signs client
// certificates), reloaded when the files change, without a restart and without dropping a
// connection: grpc-js server credentials built on a certificate provider swap the listening
// socket's secure context, which new handshakes use; connections already open keep theirs.
// A new set is checked (it parses, the key matches the certificate, Node accepts it as a secure
// context) before it is handed over; one that is not keeps the set in use, and the log says why.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { WatchOptions } from './watch.js';
import { readSmallFile, watchFiles } from './watch.js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

const MAX_FILE_BYTES = 1024 * 1024;

export interface TlsFiles {
  cert: string;
  key: string;
  /** With a CA, clients must present a certificate it signed (mutual TLS). */
  ca?: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** The server certificate's SHA-256 fingerprint and expiry (for the log). */
  fingerprint256: string;
  validTo: string;
}

/** Reads and checks the files; throws an Error naming the file and the fault. */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const read = (what: string, file: string) => {
    try {
      return readSmallFile(file, MAX_FILE_BYTES);
    } catch (err) {
      throw new Error(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = read('--xds-tls-cert', files.cert);
  const key = read('--xds-tls-key', files.key);
  const ca = files.ca ? read('--xds-tls-ca', files.ca) : undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`--xds-tls-cert ${files.cert}: not a PEM certificate (${(err as Error).message})`);
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('it is not the key of the certificate');
  } catch (err) {
    throw new Error(`--xds-tls-key ${files.key}: ${(err as Error).message}`);
  }
  if (ca) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new Error(`--xds-tls-ca ${files.ca}: not a PEM certificate (${(err as Error).message})`);
    }
  }
  try {
    createSecureContext({ cert, key, ca }); // what grpc-js will do with them: fail here, not there
  } catch (err) {
    throw new Error(`TLS files not usable together: ${(err as Error).message}`);
  }
  return { cert, key, ca, fingerprint256: x509.fingerprint256, validTo: x509.validTo };
}

/**
 * A grpc-js certificate provider over the three files, and the server credentials built on it.
 * grpc-js asks providers for updates when a server binds; this one answers with the last good set
 * and again after every good reload.
 */
export class ReloadingCertificates implements CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private unwatch?: () => void;

  private constructor(
    private readonly files: TlsFiles,
    private readonly log: Logger,
  ) {
    this.material = readTlsMaterial(files);
  }

  /** Reads the files (throws when they are missing or unusable) and watches them for changes. */
  static open(files: TlsFiles, log: Logger, watch?: WatchOptions): ReloadingCertificates {
    const certs = new ReloadingCertificates(files, log);
    certs.unwatch = watchFiles([files.cert, files.key, ...(files.ca ? [files.ca] : [])], () => certs.reload(), watch);
    log.info({ fingerprint256: certs.material.fingerprint256, validTo: certs.material.validTo, mutual: !!files.ca }, 'xDS TLS certificates loaded');
    return certs;
  }

  /** Server credentials that follow this provider: mutual TLS when there is a CA. */
  credentials(): grpc.ServerCredentials {
    const mutual = !!this.files.ca;
    // grpc-js hands the first provider the identity and the second the CA (its parameter names say
    // otherwise); this one serves both, so the order cannot go wrong.
    return grpc.experimental.createCertificateProviderServerCredentials(this, mutual ? this : null, mutual);
  }

  /** The server certificate in use. */
  get current(): { fingerprint256: string; validTo: string } {
    return { fingerprint256: this.material.fingerprint256, validTo: this.material.validTo };
  }

  /** Re-reads the files; returns whether the new set was taken. */
  reload(): boolean {
    let material: TlsMaterial;
    try {
      material = readTlsMaterial(this.files);
    } catch (err) {
      this.log.error({ problem: (err as Error).message, fingerprint256: this.material.fingerprint256 }, 'xDS TLS certificates not reloaded: keeping the ones in use');
      return false;
    }
    this.material = material;
    this.log.info({ fingerprint256: material.fingerprint256, validTo: material.validTo }, 'xDS TLS certificates reloaded');
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.identityListeners) l(this.identityUpdate());
    return true;
  }

  close(): void {
    this.unwatch?.();
  }

  // grpc.experimental.CertificateProvider. Answers come on the next tick: grpc-js registers its
  // own watcher only after adding these listeners, and would miss a synchronous answer.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener(this.identityUpdate()));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate | null {
    return this.material.ca ? { caCertificate: this.material.ca } : null;
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: this.material.cert, privateKey: this.material.key };
  }
}
