// Named API tokens with roles, from a YAML or JSON file that is reloaded when it changes:
//   tokens: [{name: alice, role: operator, sha256: <hex of the SHA-256 of the token>}]
// Only hashes are stored; a presented token is hashed and compared against every entry in
// constant time. A file that does not parse keeps the last good set (and says why in the log);
// at start-up it stops the server instead.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import jsYaml from 'js-yaml';
import { z } from 'zod';
import { ROLES } from './roles.js';
import type { Role } from './roles.js';

/** The name `--api-token` authenticates as (an admin). */
export const LEGACY_TOKEN_NAME = 'admin';
/** `by` values Sluice itself writes into history: a token may not pass for them. */
const RESERVED_NAMES = new Set(['api', 'schedule', 'analysis', 'fleet']);
const MAX_FILE_BYTES = 1024 * 1024;
const RELOAD_POLL_MS = 1000;

export interface TokenIdentity {
  name: string;
  role: Role;
  /** The stored hash, hex: a session stays valid only while its token does. */
  sha256: string;
}

const TokenSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_", "@", ":" or "-", starting with a letter or digit'),
  role: z.enum(ROLES),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be the 64 hex digits of the SHA-256 of the token (printf %s "$TOKEN" | sha256sum)')
    .transform((h) => h.toLowerCase()),
});

const TokensFileSchema = z.strictObject({ tokens: z.array(TokenSchema).max(10_000) });

export function sha256Hex(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Entries of a tokens file, or an Error naming the line or field at fault (never a value). */
export function parseTokensFile(text: string, legacyToken?: string): TokenIdentity[] {
  let raw: unknown;
  try {
    raw = jsYaml.load(text);
  } catch (err) {
    // The reason and the line only: js-yaml's message quotes the source, which may hold a value.
    const e = err as Error & { reason?: string; mark?: { line: number } };
    const line = e.mark ? e.mark.line + 1 : undefined;
    throw new Error(`not YAML or JSON${line ? ` (line ${line})` : ''}: ${e.reason ?? 'syntax error'}`);
  }
  const parsed = TokensFileSchema.safeParse(raw ?? {});
  if (!parsed.success)
    throw new Error(parsed.error.issues.map((i) => `${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(file)'}: ${i.message}`).join('; '));
  const tokens = parsed.data.tokens;
  if (legacyToken) tokens.push({ name: LEGACY_TOKEN_NAME, role: 'admin', sha256: sha256Hex(legacyToken) });
  const names = new Set<string>();
  const hashes = new Set<string>();
  tokens.forEach((t, i) => {
    const at = t.name === LEGACY_TOKEN_NAME && i === tokens.length - 1 && legacyToken ? '--api-token' : `tokens[${i}]`;
    if (RESERVED_NAMES.has(t.name)) throw new Error(`${at}.name: "${t.name}" is what Sluice itself writes into history; choose another name`);
    if (names.has(t.name)) throw new Error(`${at}.name: "${t.name}" is used twice${t.name === LEGACY_TOKEN_NAME ? ' (--api-token is named "admin")' : ''}`);
    if (hashes.has(t.sha256)) throw new Error(`${at}.sha256: the same token is listed twice`);
    names.add(t.name);
    hashes.add(t.sha256);
  });
  return tokens;
}

export interface ApiTokensOptions {
  /** The tokens file (`--api-tokens`); without it only `legacyToken` is known. */
  file?: string;
  /** `--api-token`: one admin token. */
  legacyToken?: string;
  log: Logger;
}

export class ApiTokens {
  private entries: { identity: TokenIdentity; digest: Buffer }[] = [];
  private bySha256 = new Map<string, TokenIdentity>();
  private reloading = false;

  private constructor(private readonly opts: ApiTokensOptions) {}

  /** Reads the file (throws when it is missing or invalid) and watches it for changes. */
  static open(opts: ApiTokensOptions): ApiTokens {
    const tokens = new ApiTokens(opts);
    try {
      tokens.set(parseTokensFile(opts.file ? readSmall(opts.file) : 'tokens: []', opts.legacyToken));
    } catch (err) {
      throw new Error(`--api-tokens ${opts.file ?? ''}: ${(err as Error).message}`);
    }
    if (opts.file) {
      // Polling the path survives editors that replace the file and Kubernetes' symlink swaps.
      fs.watchFile(opts.file, { interval: RELOAD_POLL_MS, persistent: false }, (now, before) => {
        if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) tokens.reload();
      });
    }
    opts.log.info({ file: opts.file, tokens: tokens.entries.length }, 'API tokens loaded');
    return tokens;
  }

  get size(): number {
    return this.entries.length;
  }

  /** The token's identity, or undefined. Every entry is compared, matching or not. */
  authenticate(token: string): TokenIdentity | undefined {
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: TokenIdentity | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest) && !found) found = e.identity;
    return found;
  }

  /** The current identity of a token authenticated earlier (its role may have changed), or undefined once it is gone. */
  current(sha256: string): TokenIdentity | undefined {
    return this.bySha256.get(sha256);
  }

  close(): void {
    if (this.opts.file) fs.unwatchFile(this.opts.file);
  }

  /** Re-reads the file; a bad file keeps the last good set. */
  reload(): void {
    if (this.reloading || !this.opts.file) return;
    this.reloading = true;
    try {
      this.set(parseTokensFile(readSmall(this.opts.file), this.opts.legacyToken));
      this.opts.log.info({ file: this.opts.file, tokens: this.entries.length }, 'API tokens reloaded');
    } catch (err) {
      this.opts.log.error({ file: this.opts.file, problem: (err as Error).message, tokens: this.entries.length }, 'API tokens file not reloaded: keeping the last good set');
    } finally {
      this.reloading = false;
    }
  }

  private set(tokens: TokenIdentity[]): void {
    this.entries = tokens.map((identity) => ({ identity, digest: Buffer.from(identity.sha256, 'hex') }));
    this.bySha256 = new Map(tokens.map((t) => [t.sha256, t]));
  }
}

function readSmall(file: string): string {
  const size = fs.statSync(file).size;
  if (size > MAX_FILE_BYTES) throw new Error(`${file} is ${size} bytes; a tokens file may have at most ${MAX_FILE_BYTES}`);
  return fs.readFileSync(file, 'utf8');
}
