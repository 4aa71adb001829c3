// Watching files that are replaced while the server runs (a policy, certificates).
import fs from 'node:fs';

const POLL_MS = 1000;
/** After a change, wait this long for the files written with it (a certificate, then its key). */
const SETTLE_MS = 250;

export interface WatchOptions {
  pollMs?: number;
  settleMs?: number;
}

/**
 * Calls `onChange` once the files stop changing after any of them changed. Polled (stat), which
 * survives editors that replace a file and Kubernetes' symlink swaps of mounted secrets; no
 * watcher keeps the process alive. Returns a function that stops watching.
 */
export function watchFiles(files: readonly string[], onChange: () => void, opts: WatchOptions = {}): () => void {
  const interval = opts.pollMs ?? POLL_MS;
  const settle = opts.settleMs ?? SETTLE_MS;
  let timer: NodeJS.Timeout | undefined;
  const listener = (now: fs.Stats, before: fs.Stats) => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, settle);
    timer.unref();
  };
  const unique = [...new Set(files)];
  for (const f of unique) fs.watchFile(f, { interval, persistent: false }, listener);
  return () => {
    clearTimeout(timer);
    for (const f of unique) fs.unwatchFile(f, listener);
  };
}

/** Reads a file that must be small (a policy, a certificate): a larger one is refused unread. */
export function readSmallFile(file: string, maxBytes: number): Buffer {
  const size = fs.statSync(file).size;
  if (size > maxBytes) throw new Error(`${file} is ${size} bytes; at most ${maxBytes}`);
  return fs.readFileSync(file);
}
