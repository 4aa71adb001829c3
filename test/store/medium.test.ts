// A medium that cannot be written: the store still opens and serves what it holds, every write
// fails with StoreUnavailableError naming the cause, health() says so, nothing changes (in
// memory or on disk), and the store heals once the medium can be written again.
// Tests run as root, where permissions do not stop writes: the unwritable case runs a child as
// `nobody`; the read-only and full cases run a child in a private mount namespace on a small
// tmpfs (skipped where mounts are not allowed).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/sluice.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROBE = path.join(ROOT, 'test/store/fixtures/medium-probe.ts');
const NOBODY = 65534;

function run(cmd: string, args: string[], opts: { uid?: number; gid?: number } = {}): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop();
      if (code !== 0 || !last) reject(new Error(`probe exited with ${code}: ${err}${out}`));
      else resolve(JSON.parse(last));
    });
  });
}

/** Whether this machine lets us mount a tmpfs in a private mount namespace. */
function canMountTmpfs(): { ok: boolean; unshare: string[] } {
  const unshare = process.getuid?.() === 0 ? ['-m'] : ['-r', '-m'];
  const probe = spawnSync('unshare', [...unshare, 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs "${os.tmpdir()}"`]);
  return { ok: probe.status === 0, unshare };
}

const isRoot = process.getuid?.() === 0;
const mounts = canMountTmpfs();
if (!mounts.ok) console.warn('skipping read-only and full-disk store tests: cannot mount a tmpfs in a private mount namespace here');

describe('FileStore on a medium that cannot be written', () => {
  it.skipIf(!isRoot)('serves an unwritable data dir read-only and refuses writes with EACCES (as nobody)', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'services'));
    fs.writeFileSync(path.join(dir, 'services/a.json'), '{"v":1}');
    fs.writeFileSync(path.join(dir, 'services/torn.json'), '{"v":');
    for (const d of [dir, path.join(dir, 'services')]) fs.chmodSync(d, 0o755);

    const report = await run(process.execPath, ['--import', 'tsx', PROBE, 'unwritable', dir], { uid: NOBODY, gid: NOBODY });

    expect(report.uid).toBe(NOBODY);
    expect(report.healthAtOpen).toEqual({ ok: false, message: expect.stringContaining(`data dir ${dir} is not writable by this user (uid ${NOBODY}) (EACCES`) });
    expect(report.before.map((e: any) => [e.key, e.value])).toEqual([['services/a', { v: 1 }]]);
    // The corrupt file is reported but cannot be moved: it stays where it is.
    expect(report.quarantined).toEqual([
      { key: 'services/torn', file: path.join(dir, 'services/torn.json'), reason: expect.stringMatching(/^not valid JSON/), at: expect.any(String) },
    ]);
    for (const attempt of [report.single, report.multi, report.remove])
      expect(attempt).toEqual({ name: 'StoreUnavailableError', code: 'EACCES', message: expect.stringContaining(`data dir ${dir} is not writable by this user`) });
    expect(report.healthAfter.ok).toBe(false);
    expect(report.after).toEqual(report.before);
    expect(fs.readdirSync(dir).sort()).toEqual(['services']);
    expect(fs.readdirSync(path.join(dir, 'services')).sort()).toEqual(['a.json', 'torn.json']);
    expect(fs.readFileSync(path.join(dir, 'services/a.json'), 'utf8')).toBe('{"v":1}');
  });

  it.skipIf(!mounts.ok)('serves a read-only data dir, refuses writes with EROFS, heals when writable; a full one fails whole commits with ENOSPC', async () => {
    const mnt = tempDir('sluice-tmpfs-');
    const script = `mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" --import tsx "$3" tmpfs "$1"`;
    const report = await run('unshare', [...mounts.unshare, 'sh', '-c', script, 'sh', mnt, process.execPath, PROBE]);
    const data = path.join(mnt, 'data');
    const values = (snap: any[]) => snap.map((e) => [e.key, e.value]);

    // Read-only.
    expect(report.roHealthAtOpen).toEqual({ ok: false, message: expect.stringContaining(`data dir ${data} is read-only (EROFS`) });
    expect(values(report.roBefore)).toEqual([['rollouts/a', { v: 1 }], ['services/a', { v: 1 }]]);
    for (const attempt of [report.roSingle, report.roMulti])
      expect(attempt).toEqual({ name: 'StoreUnavailableError', code: 'EROFS', message: expect.stringContaining(`data dir ${data} is read-only`) });
    expect(report.roHealthAfter.ok).toBe(false);
    expect(report.roAfter).toEqual(report.roBefore);
    expect(report.rwAgain.ok).toBeDefined();
    expect(report.rwHealth).toEqual({ ok: true });

    // Full: nothing fits (the journal fails), then a commit fails after its first key was written.
    for (const attempt of [report.fullMulti, report.fullSingle, report.midMulti])
      expect(attempt).toEqual({ name: 'StoreUnavailableError', code: 'ENOSPC', message: expect.stringContaining(`data dir ${data} is full`) });
    expect(report.midMultiLogged).toContain('a commit failed while writing its keys; rolled back');
    expect(report.fullHealth.ok).toBe(false);
    expect(report.fullAfter).toEqual(report.fullBefore);
    expect(values(report.fullAfter)).toEqual([['rollouts/a', { v: 1 }], ['services/a', { v: 3 }]]);
    expect(report.fullFiles.filter((f: string) => f.includes('.tmp-') || f.startsWith('.journal/'))).toEqual([]);
    expect(report.freed.ok).toBeDefined();
    expect(report.freedHealth).toEqual({ ok: true });
    // On disk too: the failed commits left nothing behind.
    expect(values(report.reopened)).toEqual([['rollouts/a', { v: 1 }], ['services/a', { v: 3 }], ['services/b', { v: 6 }]]);
  });
});
