// FileStore against real files: layout, revisions and expectations, atomic multi-key commits
// through the undo journal, quarantine of bad files, the in-process side of the lock.
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';
import { JOURNAL_FORMAT } from '../../src/store/journal.js';
import type { StoreChange } from '../../src/store/store.js';
import { StoreConflictError, StoreLockedError } from '../../src/store/store.js';
import { tempDir } from '../support/sluice.js';

const open: FileStore[] = [];
async function openStore(dir: string, opts: Parameters<typeof FileStore.open>[1] = {}): Promise<FileStore> {
  const store = await FileStore.open(dir, opts);
  open.push(store);
  return store;
}
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});

function writeFile(dir: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
}

/** Every file under dir (relative paths), sorted. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}

/** A pino logger that collects its records, to check what the store reports. */
function collectingLog(): { log: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { log, records };
}

describe('FileStore data', () => {
  it('loads data dirs written by earlier versions unchanged (plain JSON files per key)', async () => {
    const dir = tempDir();
    const service = { name: 'echo', stable: 'v1', versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 1 }] } } };
    writeFile(dir, 'services/echo.json', JSON.stringify(service, null, 1));
    writeFile(dir, 'rollouts/echo.json', JSON.stringify({ service: 'echo', phase: 'Progressing' }));
    const store = await openStore(dir);
    expect(await store.read('services/echo')).toEqual({ value: service, revision: expect.any(Number) });
    expect((await store.entries('')).map((e) => e.key)).toEqual(['rollouts/echo', 'services/echo']);
  });

  it('writes plain JSON files, returns copies, and sorts entries by key', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.commit([{ put: 'services/b', value: { n: 2 } }]);
    await store.commit([{ put: 'services/a', value: { n: 1 } }]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'services/a.json'), 'utf8'))).toEqual({ n: 1 });
    const [first] = await store.entries<{ n: number }>('services/');
    first!.value.n = 99;
    expect((await store.entries('services/')).map((e) => [e.key, e.value])).toEqual([
      ['services/a', { n: 1 }],
      ['services/b', { n: 2 }],
    ]);
    await store.commit([{ delete: 'services/a' }]);
    expect(fs.existsSync(path.join(dir, 'services/a.json'))).toBe(false);
    expect(await store.read('services/a')).toBeUndefined();
  });

  it('treats Object.prototype names as ordinary keys', async () => {
    const store = await openStore(tempDir());
    for (const name of Object.getOwnPropertyNames(Object.prototype).filter((n) => /^[A-Za-z0-9]/.test(n))) {
      expect(await store.read(`services/${name}`)).toBeUndefined();
      expect(await store.read(name)).toBeUndefined();
      await store.commit([{ put: `services/${name}`, value: { name } }], { [`services/${name}`]: 0 });
      expect((await store.read(`services/${name}`))?.value).toEqual({ name });
    }
    // An expectation object inherits nothing: only own keys are checked.
    await store.commit([{ put: 'services/x', value: 1 }], {});
  });

  it('rejects bad keys and bad commits before touching the disk', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    for (const key of ['', '../x', 'a/../b', '/abs', 'a//b', '.hidden', 'quarantine/x', 'a b'])
      await expect(store.commit([{ put: key, value: 1 }]), key).rejects.toThrow(/invalid store key/);
    await expect(store.commit([])).rejects.toThrow(/at least one op/);
    await expect(store.commit([{ put: 'a', value: 1 }, { delete: 'a' }])).rejects.toThrow(/twice/);
    await expect(store.commit([{ put: 'a', value: undefined }])).rejects.toThrow(/no value/);
    await expect(store.commit([{ put: 'a', value: 1 }], { a: -1 })).rejects.toThrow(/non-negative integer/);
    expect(filesUnder(dir).filter((f) => !f.startsWith('.lock'))).toEqual([]);
  });
});

describe('FileStore revisions and expectations', () => {
  it('gives every commit a higher revision, shared by the keys it wrote', async () => {
    const dir = tempDir();
    writeFile(dir, 'services/a.json', '{"n":0}');
    const store = await openStore(dir);
    const loaded = (await store.read('services/a'))!.revision;
    expect(loaded).toBeGreaterThan(0);
    const { revision: r1 } = await store.commit([{ put: 'services/a', value: 1 }]);
    const { revision: r2 } = await store.commit([
      { put: 'services/a', value: 2 },
      { put: 'services/b', value: 2 },
    ]);
    expect(r1).toBeGreaterThan(loaded);
    expect(r2).toBeGreaterThan(r1);
    expect((await store.read('services/a'))!.revision).toBe(r2);
    expect((await store.entries('services/')).map((e) => e.revision)).toEqual([r2, r2]);
  });

  it('fails a commit whose expectation does not hold, naming the key, and writes nothing', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const { revision } = await store.commit([{ put: 'services/a', value: 1 }]);
    await store.commit([{ put: 'services/a', value: 2 }], { 'services/a': revision }); // holds

    const stale = store.commit([{ put: 'services/a', value: 3 }, { put: 'rollouts/a', value: 3 }], { 'services/a': revision });
    await expect(stale).rejects.toBeInstanceOf(StoreConflictError);
    await expect(stale).rejects.toThrow(`store conflict on services/a: expected revision ${revision}, found revision ${revision + 1}`);
    await expect(store.commit([{ put: 'services/a', value: 3 }], { 'services/a': 0 })).rejects.toThrow(
      /services\/a: expected absent, found revision/,
    );
    // An expectation on a key the commit does not write (a rollout guarding its service).
    await expect(store.commit([{ put: 'rollouts/a', value: 3 }], { 'services/a': revision })).rejects.toThrow(StoreConflictError);
    await expect(store.commit([{ put: 'rollouts/a', value: 3 }], { 'services/zzz': 5 })).rejects.toThrow(
      'store conflict on services/zzz: expected revision 5, found absent',
    );
    expect((await store.read('services/a'))!.value).toBe(2);
    expect(await store.read('rollouts/a')).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'rollouts/a.json'))).toBe(false);
    expect(store.health()).toEqual({ ok: true }); // a conflict is not a medium problem
  });

  it('lets exactly one of many concurrent writers with the same expectation win', async () => {
    const store = await openStore(tempDir());
    const { revision } = await store.commit([{ put: 'services/a', value: 0 }]);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.commit([{ put: 'services/a', value: i + 1 }, { put: `rollouts/${i}`, value: i }], { 'services/a': revision })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof StoreConflictError)).toBe(true);
    expect((await store.entries('rollouts/')).length).toBe(1);
  });

  it('reports every committed change to watchers of its prefix, in revision order', async () => {
    const store = await openStore(tempDir());
    const seen: StoreChange[] = [];
    const stop = store.watch('services/', (c) => seen.push(c));
    const { revision: r1 } = await store.commit([{ put: 'services/a', value: { v: 1 } }, { put: 'rollouts/a', value: 1 }]);
    const { revision: r2 } = await store.commit([{ delete: 'services/a' }]);
    stop();
    await store.commit([{ put: 'services/b', value: 1 }]);
    expect(seen).toEqual([
      { key: 'services/a', revision: r1, value: { v: 1 } },
      { key: 'services/a', revision: r2 },
    ]);
  });
});

describe('FileStore multi-key commits (undo journal)', () => {
  it('leaves no journal after a commit, and commits every key', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.commit([
      { put: 'services/a', value: 1 },
      { put: 'rollouts/a', value: 2 },
    ]);
    await store.commit([
      { delete: 'services/a' },
      { put: 'rollouts/a', value: 3 },
    ]);
    expect(filesUnder(dir).filter((f) => !f.startsWith('.lock'))).toEqual(['rollouts/a.json']);
    expect(fs.readdirSync(path.join(dir, '.journal'))).toEqual([]);
  });

  it('rolls back a commit a crash interrupted (journal present at open)', async () => {
    const dir = tempDir();
    // The commit was: put services/a = NEW, put rollouts/a = NEW (created), delete services/gone.
    // The crash came after services/a and rollouts/a were written and before services/gone was deleted.
    writeFile(dir, 'services/a.json', '{"v":"new"}');
    writeFile(dir, 'rollouts/a.json', '{"v":"new"}');
    writeFile(dir, 'services/gone.json', '{"v":"old"}');
    writeFile(dir, 'services/untouched.json', '{"v":"old"}');
    writeFile(
      dir,
      '.journal/000001700000000-1-1.json',
      JSON.stringify({
        format: JOURNAL_FORMAT,
        keys: [
          { key: 'services/a', existed: true, prev: { v: 'old' } },
          { key: 'rollouts/a', existed: false },
          { key: 'services/gone', existed: true, prev: { v: 'old' } },
        ],
      }),
    );
    const { log, records } = collectingLog();
    const store = await openStore(dir, { log });
    expect((await store.entries('')).map((e) => [e.key, e.value])).toEqual([
      ['services/a', { v: 'old' }],
      ['services/gone', { v: 'old' }],
      ['services/untouched', { v: 'old' }],
    ]);
    expect(fs.existsSync(path.join(dir, 'rollouts/a.json'))).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'services/a.json'), 'utf8'))).toEqual({ v: 'old' });
    expect(fs.readdirSync(path.join(dir, '.journal'))).toEqual([]);
    expect(records.some((r) => String(r.msg).includes('rolled back a commit interrupted by a crash'))).toBe(true);
    expect(store.health()).toEqual({ ok: true });

    // And the roll-back itself was durable: a second open sees the same.
    await store.close();
    const again = await openStore(dir);
    expect((await again.read('services/a'))!.value).toEqual({ v: 'old' });
  });

  it('quarantines a journal it cannot read and still starts', async () => {
    const dir = tempDir();
    writeFile(dir, 'services/a.json', '{"v":1}');
    writeFile(dir, '.journal/000001700000000-1-1.json', '{"format":"something-else"}');
    const store = await openStore(dir);
    expect((await store.read('services/a'))!.value).toEqual({ v: 1 });
    const [entry] = await store.quarantined();
    expect(entry).toMatchObject({ key: '.journal/000001700000000-1-1', reason: expect.stringMatching(/unusable commit journal/) });
    expect(fs.existsSync(entry!.movedTo!)).toBe(true);
  });

  it('removes temporary files of an interrupted write once it holds the lock, and only then', async () => {
    const dir = tempDir();
    writeFile(dir, 'services/a.json.tmp-123-1', '{"half');
    writeFile(dir, '.journal/1.json.tmp-123-2', '{"half');
    const first = await openStore(dir);
    expect(filesUnder(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // A second open is refused before it cleans anything.
    writeFile(dir, 'services/b.json.tmp-999-1', 'in flight');
    await expect(FileStore.open(dir)).rejects.toBeInstanceOf(StoreLockedError);
    expect(fs.existsSync(path.join(dir, 'services/b.json.tmp-999-1'))).toBe(true);
    await first.close();
  });
});

describe('FileStore quarantine', () => {
  it('moves corrupt, empty and unreadable files aside at open, names them, and serves the rest', async () => {
    const dir = tempDir();
    writeFile(dir, 'services/good.json', '{"name":"good"}');
    writeFile(dir, 'services/torn.json', '{"name":"to');
    writeFile(dir, 'services/empty.json', '');
    writeFile(dir, 'rollouts/blank.json', ' \n');
    fs.mkdirSync(path.join(dir, 'rollouts/dir.json')); // not a file: ignored, not quarantined
    const { log, records } = collectingLog();
    const store = await openStore(dir, { log });

    expect((await store.entries('')).map((e) => e.key)).toEqual(['services/good']);
    const entries = await store.quarantined();
    expect(entries.map((e) => [e.key, e.reason])).toEqual(
      expect.arrayContaining([
        ['services/torn', expect.stringMatching(/^not valid JSON: /)],
        ['services/empty', 'unreadable: empty file'],
        ['rollouts/blank', 'unreadable: empty file'],
      ]),
    );
    expect(entries).toHaveLength(3);
    for (const e of entries) {
      expect(e.file).toBe(path.join(dir, `${e.key}.json`));
      expect(e.movedTo!.startsWith(path.join(dir, 'quarantine', e.key) + '.')).toBe(true);
      expect(fs.existsSync(e.file)).toBe(false);
      expect(fs.existsSync(e.movedTo!)).toBe(true);
      expect(records.some((r) => r.level === 50 && r.file === e.file && r.reason === e.reason)).toBe(true);
    }
    expect(fs.readFileSync(entries.find((e) => e.key === 'services/torn')!.movedTo!, 'utf8')).toBe('{"name":"to');
    expect(store.health()).toEqual({ ok: true });

    // The quarantine directory is not loaded as keys at the next open.
    await store.close();
    const again = await openStore(dir);
    expect((await again.entries('')).map((e) => e.key)).toEqual(['services/good']);
    expect(await again.quarantined()).toEqual([]);
  });

  it('quarantines a value the domain rejects, guarded by its revision', async () => {
    const dir = tempDir();
    writeFile(dir, 'rollouts/echo.json', '{}');
    const store = await openStore(dir);
    const seen: StoreChange[] = [];
    store.watch('rollouts/', (c) => seen.push(c));
    const { revision } = (await store.read('rollouts/echo'))!;
    await expect(store.quarantine('rollouts/echo', 'not a rollout', revision + 1)).rejects.toBeInstanceOf(StoreConflictError);
    const entry = await store.quarantine('rollouts/echo', 'not a rollout: missing service', revision);
    expect(entry).toMatchObject({ key: 'rollouts/echo', reason: 'not a rollout: missing service', file: path.join(dir, 'rollouts/echo.json') });
    expect(fs.readFileSync(entry.movedTo!, 'utf8')).toBe('{}');
    expect(await store.read('rollouts/echo')).toBeUndefined();
    expect(seen).toEqual([{ key: 'rollouts/echo', revision: expect.any(Number) }]);
    expect(await store.quarantined()).toEqual([entry]);
    await expect(store.quarantine('rollouts/echo', 'again')).rejects.toThrow(/no such key/);
    // The key can be written again afterwards.
    await store.commit([{ put: 'rollouts/echo', value: { service: 'echo' } }], { 'rollouts/echo': 0 });
  });
});

describe('FileStore lock (in one process)', () => {
  it('refuses a second open of the same dir, naming it and the holder, until the first closes', async () => {
    const dir = tempDir();
    const first = await openStore(dir);
    const second = FileStore.open(dir);
    await expect(second).rejects.toBeInstanceOf(StoreLockedError);
    await expect(second).rejects.toThrow(`data dir ${fs.realpathSync(dir)} is in use by another Sluice (pid ${process.pid} on `);
    // Through another spelling of the same path, too.
    await expect(FileStore.open(path.join(dir, '..', path.basename(dir)))).rejects.toBeInstanceOf(StoreLockedError);
    await first.close();
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(false);
    await openStore(dir);
  });

  it('stops writing when its lock is taken away, and says so', async () => {
    const dir = tempDir();
    const lost: Error[] = [];
    const store = await openStore(dir, { lockStaleMs: 2_000, onLockLost: (err) => lost.push(err) });
    fs.rmdirSync(path.join(dir, '.lock')); // what a takeover after a stall looks like to the holder
    const deadline = Date.now() + 10_000;
    while (lost.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lost).toHaveLength(1);
    expect(store.health()).toMatchObject({ ok: false, message: expect.stringMatching(/lost the lock on data dir/) });
    await expect(store.commit([{ put: 'services/a', value: 1 }])).rejects.toMatchObject({ name: 'StoreUnavailableError', code: 'ECOMPROMISED' });
    expect(fs.existsSync(path.join(dir, 'services/a.json'))).toBe(false);
  });
});
