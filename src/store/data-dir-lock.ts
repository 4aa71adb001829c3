// Exclusive ownership of a data directory, so two servers never write the same files.
// proper-lockfile creates `<dir>/.lock` (mkdir is atomic, also on network file systems) and
// refreshes its mtime every `updateMs`; a lock whose mtime is older than `staleMs` belongs to a
// dead process and is taken over. So after kill -9 the directory is free again at most
// `staleMs` later — sooner when the dead holder was on this host (about one refresh interval);
// a clean exit (including SIGINT/SIGTERM) removes the lock at once.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { StoreLockedError } from './store.js';

export const DEFAULT_LOCK_STALE_MS = 5_000;

interface Holder {
  pid: number;
  host: string;
}

/** Directories locked by this process (proper-lockfile alone would report "held" without who). */
const heldHere = new Set<string>();

export class DataDirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly unlock: () => Promise<void>,
  ) {}

  /**
   * Takes the lock. When another holder refreshed it recently, waits until it goes stale (the
   * holder died) unless `wait` is false or the holder is a live process on this host; then
   * throws StoreLockedError. File-system errors (EROFS, EACCES...) are thrown as they are.
   */
  static async acquire(
    dir: string,
    opts: { staleMs?: number; wait?: boolean; onLost: (err: Error) => void },
  ): Promise<DataDirLock> {
    const real = await fs.realpath(dir);
    const staleMs = Math.max(opts.staleMs ?? DEFAULT_LOCK_STALE_MS, 2_000); // proper-lockfile's minimum
    if (heldHere.has(real)) throw new StoreLockedError(real, { pid: process.pid, host: os.hostname() });
    // proper-lockfile may date a fresh lock up to 1 s ahead (mtime precision probe), hence the margin.
    const deadline = Date.now() + staleMs + 2_500;
    const update = Math.max(1_000, Math.floor(staleMs / 5));
    for (;;) {
      try {
        const unlock = await lockfile.lock(real, {
          lockfilePath: path.join(real, '.lock'),
          realpath: false,
          stale: staleMs,
          update,
          onCompromised: (err) => {
            heldHere.delete(real);
            opts.onLost(err);
          },
        });
        heldHere.add(real);
        // Who holds it, for the message a second server prints; informative only.
        const holder: Holder = { pid: process.pid, host: os.hostname() };
        await fs.writeFile(path.join(real, '.lock-owner.json'), JSON.stringify(holder)).catch(() => undefined);
        return new DataDirLock(real, unlock);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
        const holder = await readHolder(real);
        const here = holder !== undefined && holder.host === os.hostname();
        const liveHere = here && holder.pid !== process.pid && isAlive(holder.pid);
        if (opts.wait === false || liveHere || Date.now() > deadline) throw new StoreLockedError(real, holder);
        // A holder on this host that is gone (killed; or our own pid: the previous life of a
        // restarted container) stops refreshing the lock: once it has missed a refresh, take it
        // over now instead of waiting for staleness. A fresh lock (a live winner) is newer.
        if (here && (await untouchedFor(path.join(real, '.lock'), update + 500))) {
          await fs.rm(path.join(real, '.lock'), { recursive: true, force: true });
          continue;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.dir);
    await fs.rm(path.join(this.dir, '.lock-owner.json'), { force: true }).catch(() => undefined);
    await this.unlock().catch(() => undefined); // already compromised: nothing left to release
  }
}

async function readHolder(dir: string): Promise<Holder | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(path.join(dir, '.lock-owner.json'), 'utf8')) as Partial<Holder>;
    return Number.isSafeInteger(parsed.pid) && typeof parsed.host === 'string'
      ? { pid: parsed.pid!, host: parsed.host }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a path was last modified more than `ms` ago (false when it is gone). */
async function untouchedFor(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await fs.stat(file)).mtimeMs > ms;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
