// A client's identity from the certificate it presented over mutual TLS: its URI SAN (a SPIFFE id,
// spiffe://trust-domain/path) or, when it has none, its subject CN. A certificate that names
// itself ambiguously (several URI SANs, several CNs) has no identity.
import type { PeerCertificate } from 'node:tls';

export type IdentityResult = { identity: string; from: 'uri-san' | 'cn' } | { problem: string };

export interface AltName {
  type: string;
  value: string;
}

/**
 * The entries of Node's `subjectaltname` string, e.g. `URI:spiffe://a/b, DNS:x, IP Address:1.2.3.4`.
 * Entries are separated by ", "; a value that holds a comma (or anything else Node deems unsafe)
 * is written as a JSON string (`URI:"http://a/x\u002cy"`), so a separator never hides inside a
 * value. Throws on a string that does not follow that form.
 */
export function parseAltNames(text: string): AltName[] {
  const out: AltName[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) throw new Error(`subjectAltName entry without a type at ${i}`);
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      if (k >= text.length) throw new Error('unterminated quoted subjectAltName value');
      value = JSON.parse(text.slice(j, k + 1)) as string;
      j = k + 1;
    } else {
      const sep = text.indexOf(', ', j);
      const end = sep < 0 ? text.length : sep;
      value = text.slice(j, end);
      j = end;
    }
    out.push({ type, value });
    if (j < text.length) {
      if (!text.startsWith(', ', j)) throw new Error(`unexpected character in subjectAltName at ${j}`);
      j += 2;
    }
    i = j;
  }
  return out;
}

const cache = new WeakMap<PeerCertificate, IdentityResult>();

/** The identity a verified client certificate carries (memoized per certificate object). */
export function identityOf(certificate: PeerCertificate): IdentityResult {
  let result = cache.get(certificate);
  if (!result) {
    result = readIdentity(certificate);
    cache.set(certificate, result);
  }
  return result;
}

function readIdentity(certificate: PeerCertificate): IdentityResult {
  let names: AltName[];
  try {
    names = certificate.subjectaltname ? parseAltNames(certificate.subjectaltname) : [];
  } catch (err) {
    return { problem: `the client certificate's subjectAltName cannot be read: ${(err as Error).message}` };
  }
  const uris = names.filter((n) => n.type === 'URI').map((n) => n.value);
  if (uris.length > 1) return { problem: `the client certificate has ${uris.length} URI SANs; an identity needs exactly one (a SPIFFE id)` };
  if (uris.length === 1) return { identity: uris[0]!, from: 'uri-san' };
  const cn = certificate.subject?.CN as string | string[] | undefined;
  if (Array.isArray(cn)) return { problem: `the client certificate has ${cn.length} subject CNs and no URI SAN; an identity needs exactly one` };
  if (cn) return { identity: cn, from: 'cn' };
  return { problem: 'the client certificate has neither a URI SAN nor a subject CN' };
}
