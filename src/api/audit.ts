// The audit log: one JSON line per state-changing request (whatever its outcome) and per
// refused request (401/403), appended to a file. Lines are written in batches off the request
// path; close() writes what is pending, so a clean shutdown loses nothing. The file is opened
// for each batch, so a log rotator may move it away at any time. When the disk refuses a write,
// the lines wait (bounded) and are retried.
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { claimedUser } from './access.js';

export interface AuditEntry {
  time: string;
  /** The token's name (or, without tokens, X-Sluice-User / "api"); null when nobody was authenticated. */
  actor: string | null;
  /** X-Sluice-User when a token was used and it names someone else. */
  for?: string;
  role: string | null;
  via: 'token' | 'session' | 'open' | null;
  source: string;
  method: string;
  path: string;
  status: number;
}

/** Lines waiting beyond this are dropped (and counted in the file) rather than growing memory. */
const MAX_PENDING = 10_000;
const MAX_PATH = 1024;
const RETRY_MS = 1000;

export class AuditLog {
  private pending: string[] = [];
  private dropped = 0;
  private writing: Promise<void> | null = null;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {}

  /** Checks the file can be appended to (else throws: the server must not run without its audit trail). */
  static async open(file: string, log: Logger): Promise<AuditLog> {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    try {
      await fs.promises.appendFile(file, '', { mode: 0o600 });
    } catch (err) {
      throw new Error(`--audit-log ${file}: ${(err as Error).message}`);
    }
    return new AuditLog(file, log);
  }

  write(entry: AuditEntry): void {
    if (this.pending.length >= MAX_PENDING) this.dropped++;
    else this.pending.push(JSON.stringify(entry) + '\n');
    this.kick();
  }

  /** Starts a flush unless one runs or there is nothing to write. A flush with nothing to do
   *  would finish before `writing` is assigned and leave it set for ever: later lines would
   *  wait, and close() would spin on a settled promise. */
  private kick(): void {
    if (!this.writing && (this.pending.length > 0 || this.dropped > 0)) this.writing = this.flush();
  }

  /** Resolves once every line written so far is in the file (or, if the disk refuses, says how many were lost). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    while (this.writing) await this.writing;
    this.kick();
    while (this.writing) await this.writing;
    if (this.pending.length > 0) this.log.error({ file: this.file, lines: this.pending.length }, 'audit log lines lost at shutdown: the file cannot be written');
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0 || this.dropped > 0) {
      const lines = this.pending;
      this.pending = [];
      if (this.dropped > 0) {
        lines.push(JSON.stringify({ time: new Date().toISOString(), dropped: this.dropped }) + '\n');
        this.log.warn({ dropped: this.dropped }, 'audit log could not keep up; lines dropped');
        this.dropped = 0;
      }
      try {
        await fs.promises.appendFile(this.file, lines.join(''), { mode: 0o600 });
      } catch (err) {
        // Keep the lines (within the bound) and try again shortly: a full or read-only disk may recover.
        this.pending = [...lines, ...this.pending];
        if (this.pending.length > MAX_PENDING) this.dropped += this.pending.splice(MAX_PENDING).length;
        this.log.error({ err, file: this.file, waiting: this.pending.length }, 'audit log write failed; retrying');
        // One retry at a time: a second refused write while one waits does not add another.
        if (!this.closed && !this.retry)
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.kick();
          }, RETRY_MS).unref();
        break;
      }
    }
    this.writing = null;
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Records what the audit log is for, after each response. */
export function auditRequests(app: FastifyInstance, audit: AuditLog): void {
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    if (!STATE_CHANGING.has(req.method) && status !== 401 && status !== 403) return;
    const p = req.principal;
    const user = claimedUser(req);
    audit.write({
      time: new Date().toISOString(),
      actor: p?.name ?? null,
      ...(p && p.via !== 'open' && user && user !== p.name ? { for: user } : {}),
      role: p && p.via !== 'open' ? p.role : null,
      via: p?.via ?? null,
      source: req.ip,
      method: req.method,
      path: req.url.length > MAX_PATH ? `${req.url.slice(0, MAX_PATH)}…` : req.url,
      status,
    });
  });
}
