// Who is at the other end of a call, as far as the transport can tell: the address, and the
// certificate the client presented when the connection is mutual TLS. What an identity may do
// is not decided here (see XdsServerOptions.authorize).
import type { PeerCertificate } from 'node:tls';

export interface XdsPeer {
  /** The client's address as grpc-js reports it (`ip:port`). */
  readonly address: string;
  /** The client's certificate, present only when it was verified against the server's CA
   *  (grpc-js gives none for plaintext, for server-only TLS, or for an unverified one). */
  readonly certificate?: PeerCertificate;
}

/** What peerOf needs of a grpc-js server call (every kind of server call has both). */
export interface PeerSource {
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
}

export const NO_PEER: XdsPeer = Object.freeze({ address: '' });

export function peerOf(call: PeerSource): XdsPeer {
  const certificate = call.getAuthContext().sslPeerCertificate;
  const address = call.getPeer();
  return certificate ? { address, certificate } : { address };
}
