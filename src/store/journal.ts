// Undo journal of a multi-key commit. Before the first key of a commit is written, the journal
// records what every key held (its previous value, or that it was absent) and is made durable;
// it is removed once every key is written and durable. A journal still present means its
// commit never completed (the caller was never told it succeeded), so the keys are rolled
// back to the recorded values: in the same process when a write fails, at the next open after
// a crash. Rolling back needs only the journal, never the half-written new values, and a
// failed commit changes nothing, in memory or on disk.
//
// Format (`<data dir>/.journal/<id>.json`, written by tmp + fsync + rename):
//   {"format":"sluice-store-journal/1",
//    "keys":[{"key":"services/echo","existed":true,"prev":{...}},
//            {"key":"rollouts/echo","existed":false}]}
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { makeDir, replaceFile, syncDirs } from './durable-fs.js';
import { KEY } from './store.js';

export const JOURNAL_DIR = '.journal';
export const JOURNAL_FORMAT = 'sluice-store-journal/1';

const journalSchema = z.object({
  format: z.literal(JOURNAL_FORMAT),
  keys: z
    .array(
      z.union([
        z.object({ key: z.string().regex(KEY), existed: z.literal(true), prev: z.unknown() }).strict(),
        z.object({ key: z.string().regex(KEY), existed: z.literal(false) }).strict(),
      ]),
    )
    .min(1),
});

export type Journal = z.infer<typeof journalSchema>;
export type JournalEntry = Journal['keys'][number];

/** Parses a journal file's text; throws an Error saying what is wrong. */
export function parseJournal(text: string): Journal {
  const parsed = journalSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`not a ${JOURNAL_FORMAT} journal: ${z.prettifyError(parsed.error)}`);
  for (const entry of parsed.data.keys)
    if (entry.existed && entry.prev === undefined) throw new Error(`journal entry ${entry.key} has no prev value`);
  return parsed.data;
}

let journalCounter = 0;

/** A new journal file name; names sort in creation order. */
export function newJournalFile(dataDir: string): string {
  const id = `${String(Date.now()).padStart(15, '0')}-${process.pid}-${++journalCounter}`;
  return path.join(dataDir, JOURNAL_DIR, `${id}.json`);
}

/** Writes a journal durably. */
export async function writeJournal(file: string, journal: Journal): Promise<void> {
  const dir = path.dirname(file);
  const changed = await makeDir(dir);
  await replaceFile(file, JSON.stringify(journal));
  await syncDirs([...changed, dir]);
}

/** Journal files present in the data dir (not temporary ones), oldest first. */
export async function journalFiles(dataDir: string): Promise<string[]> {
  const dir = path.join(dataDir, JOURNAL_DIR);
  try {
    return (await fs.readdir(dir))
      .filter((name) => name.endsWith('.json'))
      .sort()
      .map((name) => path.join(dir, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Restores every key of a journal durably, then removes the journal. Idempotent: a crash
 * halfway leaves the journal in place, and running it again gives the same result.
 */
export async function rollBack(journal: Journal, journalFile: string, fileOf: (key: string) => string): Promise<void> {
  const dirs: string[] = [];
  for (const entry of journal.keys) {
    const file = fileOf(entry.key);
    if (entry.existed) {
      dirs.push(...(await makeDir(path.dirname(file))));
      await replaceFile(file, JSON.stringify(entry.prev, null, 1));
    } else await fs.rm(file, { force: true });
    dirs.push(path.dirname(file));
  }
  await syncDirs(dirs);
  await removeJournal(journalFile);
}

export async function removeJournal(journalFile: string): Promise<void> {
  await fs.rm(journalFile, { force: true });
  await syncDirs([path.dirname(journalFile)]);
}
