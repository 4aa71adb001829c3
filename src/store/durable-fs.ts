// File operations that survive a crash: a file is written to a temporary name, fsynced and
// renamed over the old one, so it holds either its old or its new bytes, never a torn mix; a
// directory is fsynced after entries in it change, so the rename itself is durable.
import fs from 'node:fs/promises';
import path from 'node:path';

let tmpCounter = 0;

/** Temporary files carry this marker; only the lock holder deletes them (at open). */
export const TMP_MARKER = '.tmp-';

/**
 * Writes `text` to `file` atomically (the caller fsyncs the directory afterwards). Leaves no
 * temporary file behind when it fails.
 */
export async function replaceFile(file: string, text: string): Promise<void> {
  const tmp = `${file}${TMP_MARKER}${process.pid}-${++tmpCounter}`;
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Creates `dir` and missing parents; returns the directories whose entries changed (the parent
 * of each created directory), which must be fsynced for the new directories to be durable.
 */
export async function makeDir(dir: string): Promise<string[]> {
  const first = await fs.mkdir(dir, { recursive: true });
  if (!first) return [];
  const changed: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    changed.push(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
  return changed;
}

/** fsyncs a directory; one that does not exist has nothing to make durable. */
export async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await fs.open(dir, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs every directory once, deepest first (a new directory before the entry naming it). */
export async function syncDirs(dirs: Iterable<string>): Promise<void> {
  const unique = [...new Set(dirs)].sort((a, b) => b.length - a.length);
  for (const dir of unique) await syncDir(dir);
}
