// Shared by the access-control tests: a tokens file with one token per role, and raw HTTP calls
// that set exactly the headers a test asks for.
import fs from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../../src/api/tokens.js';
import type { Role } from '../../src/api/roles.js';
import { tempDir } from '../support/sluice.js';

export const TOKENS: Record<Role, string> & Record<string, string> = {
  viewer: 'viewer-token-6f1c0a2b9d8e7f',
  operator: 'operator-token-3a5b7c9d1e2f',
  admin: 'admin-token-8e7d6c5b4a39',
};
export const NAMES: Record<Role, string> = { viewer: 'vera', operator: 'otto', admin: 'ada' };

/** Writes a tokens file (YAML) and returns its path. */
export function writeTokens(entries: { name: string; role: Role; token: string }[], file = path.join(tempDir('sluice-tokens-'), 'tokens.yaml')): string {
  const yaml = ['tokens:', ...entries.map((e) => `  - {name: ${e.name}, role: ${e.role}, sha256: ${sha256Hex(e.token)}}`), ''].join('\n');
  // Write-then-rename, as an editor or a secret mount would: the reload never sees half a file.
  fs.writeFileSync(`${file}.tmp`, yaml);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

export function roleTokensFile(): string {
  return writeTokens((['viewer', 'operator', 'admin'] as const).map((role) => ({ name: NAMES[role], role, token: TOKENS[role] })));
}

export interface CallOptions {
  token?: string;
  cookie?: string;
  /** A JSON body (sent with content-type: application/json unless headers say otherwise). */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  body: any;
}

/** One request to 127.0.0.1:port; an event stream is answered with its status and then closed. */
export async function call(port: number, method: string, urlPath: string, opts: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = {
    ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
    ...(opts.cookie !== undefined ? { cookie: opts.cookie } : {}),
    ...opts.headers,
  };
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    signal: controller.signal,
  });
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    controller.abort();
    return { status: res.status, headers: res.headers, body: undefined };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (the dashboard page, /metrics)
  }
  return { status: res.status, headers: res.headers, body };
}

/** The session cookie (name=value) from a sign-in response. */
export function cookieOf(res: CallResult): string {
  const set = res.headers.get('set-cookie');
  if (!set) throw new Error(`no set-cookie (HTTP ${res.status})`);
  return set.split(';')[0]!;
}
