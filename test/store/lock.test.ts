// The data-dir lock across processes: a live holder refuses a second open at once, a holder
// killed with SIGKILL stops blocking once its lock goes stale, a clean stop releases at once.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LOCK_STALE_MS } from '../../src/store/data-dir-lock.js';
import { FileStore } from '../../src/store/file-store.js';
import { StoreLockedError } from '../../src/store/store.js';
import { tempDir } from '../support/sluice.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts a process that opens `dir` and holds it; resolves once it holds the lock. */
async function holder(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/store/fixtures/hold-lock.ts'), dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('locked')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`lock holder exited (${code ?? signal}) before locking`)));
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

describe('data dir lock across processes', () => {
  it('refuses a second open while the holder lives, naming the dir and its pid', async () => {
    const dir = tempDir();
    const child = await holder(dir);
    const second = FileStore.open(dir);
    await expect(second).rejects.toBeInstanceOf(StoreLockedError);
    await expect(second).rejects.toThrow(`data dir ${fs.realpathSync(dir)} is in use by another Sluice (pid ${child.pid} on `);
    // The refused open changed nothing: the holder's data is intact.
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'services/held.json'), 'utf8'))).toEqual({ pid: child.pid });
  });

  it('opens after the holder is killed with SIGKILL, once the dead holder missed a refresh', async () => {
    const dir = tempDir();
    const child = await holder(dir);
    child.kill('SIGKILL');
    await exited(child);
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(true); // SIGKILL leaves the lock behind
    const started = Date.now();
    const store = await FileStore.open(dir); // waits for staleness, since the recorded holder is dead
    console.log(`open after kill -9 took ${Date.now() - started} ms (stale after ${DEFAULT_LOCK_STALE_MS} ms)`);
    expect((await store.read('services/held'))!.value).toEqual({ pid: child.pid });
    await store.close();
  }, 20_000);

  it('is released at once when the holder stops on SIGTERM', async () => {
    const dir = tempDir();
    const child = await holder(dir);
    child.kill('SIGTERM');
    await exited(child);
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(false);
    const store = await FileStore.open(dir, { lockStaleMs: 60_000 }); // would wait a minute were the lock left
    await store.close();
  });
});
