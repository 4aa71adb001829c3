// The CLI's client commands against a real server.
import { execFile, spawn } from 'node:child_process';
import { freePort } from '../support/process.js';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestSluice } from '../support/sluice.js';
import { startTestSluice, tempDir } from '../support/sluice.js';

const run = promisify(execFile);
const CLI = path.resolve('src/cli/main.ts');

describe('sluice CLI', () => {
  let sluice: TestSluice;
  let dir: string;
  const sluiceCli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, ...args, '--server', `http://127.0.0.1:${sluice.httpPort}`, '--token', 't0k']);
    return stdout ? JSON.parse(stdout) : null;
  };

  beforeAll(async () => {
    sluice = await startTestSluice({ apiToken: 't0k' });
    dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'svc.json'),
      JSON.stringify({ versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 1 }] }, v2: { endpoints: [{ address: '127.0.0.1', port: 2 }] } }, stable: 'v1' }),
    );
    fs.writeFileSync(path.join(dir, 'rollout.json'), JSON.stringify({ service: 'echo', canary: 'v2', steps: [{ setWeight: 30 }, { pause: {} }] }));
  });
  afterAll(async () => sluice?.stop());

  it('declares a service, runs and rolls back a rollout, shows the fleet', async () => {
    expect((await sluiceCli('services', 'put', 'echo', '-f', path.join(dir, 'svc.json'))).stable).toBe('v1');
    expect((await sluiceCli('rollout', 'create', '-f', path.join(dir, 'rollout.json'))).weights).toEqual({ v1: 70, v2: 30 });
    expect((await sluiceCli('rollout', 'status', 'echo')).canary).toBe('v2');
    const rb = await sluiceCli('rollout', 'rollback', 'echo', '--reason', 'cli test', '--wait', '--timeout', '2s');
    expect(rb.phase).toBe('RolledBack');
    expect(rb.fleet.acknowledged).toBe(true);
    expect(rb.history.at(-1)).toMatchObject({ event: 'RolledBack', reason: 'cli test', by: expect.stringMatching(/^admin \(for cli:/) });
    expect((await sluiceCli('fleet')).nodes).toEqual([]);
  });

  it('fails with the server message and a non-zero exit on bad input', async () => {
    await expect(sluiceCli('rollout', 'promote', 'nope')).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('404') });
  });
});

describe('demo-backend and loadgen commands', () => {
  it('serve and measure a version over HTTP, and stop cleanly on SIGTERM', async () => {
    const port = await freePort();
    const start = (...args: string[]) => spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const backend = start('demo-backend', '--version', 'v9', '--port', String(port));
    await new Promise<void>((resolve) => backend.stderr.once('data', () => resolve()));
    const gen = start('loadgen', '--url', `http://127.0.0.1:${port}/`, '--rps', '50', '--interval', '1s');
    const line = await new Promise<string>((resolve) => {
      let out = '';
      gen.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const hit = out.split('\n').find((l) => /v9 100\.0%/.test(l));
        if (hit) resolve(hit);
      });
    });
    expect(line).toMatch(/answers/);
    const exits = [gen, backend].map((p) => new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code))));
    gen.kill('SIGTERM');
    backend.kill('SIGTERM');
    expect(await Promise.all(exits)).toEqual([0, 0]);
  });
});
