// Who did what: `by` in history is the token's name (a caller-supplied X-Sluice-User only
// beside it), every change and every refusal is a line in the audit log, the tokens file is
// reloaded when it changes (a broken one keeps the last good set), and neither tokens nor their
// hashes reach the audit log or the server's logs.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/api/audit.js';
import type { AuditEntry } from '../../src/api/audit.js';
import { sha256Hex } from '../../src/api/tokens.js';
import { ConfigSchema } from '../../src/config.js';
import { startSluice } from '../../src/main.js';
import type { Sluice } from '../../src/main.js';
import { eventually, serviceOf, tempDir } from '../support/sluice.js';
import { call, cookieOf, writeTokens } from './access-fixtures.js';

const ALICE = 'alice-secret-token-0a1b2c3d';
const ROOT = 'root-secret-token-4e5f6a7b';
const VIC = 'vic-secret-token-8c9d0e1f';
const CAROL = 'carol-secret-token-2a3b4c5d';
const LEGACY = 'legacy-admin-token-6e7f8a9b';

describe('actors and the audit log', () => {
  let sluice: Sluice;
  let port: number;
  let tokensFile: string;
  let auditFile: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    const dir = tempDir('sluice-audit-');
    tokensFile = writeTokens([
      { name: 'alice', role: 'operator', token: ALICE },
      { name: 'root', role: 'admin', token: ROOT },
      { name: 'vic', role: 'viewer', token: VIC },
    ]);
    auditFile = path.join(dir, 'audit', 'audit.log');
    const config = ConfigSchema.parse({ xdsPort: 0, httpPort: 0, dataDir: path.join(dir, 'data'), apiTokens: tokensFile, apiToken: LEGACY, auditLog: auditFile });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    sluice = await startSluice(config, pino({ level: 'trace' }, sink));
    port = sluice.httpPort;
  });
  let stopped = false;
  afterAll(async () => {
    if (!stopped) await sluice?.stop();
  });

  const auditLines = () =>
    fs
      .readFileSync(auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('records the token name as `by`, with X-Sluice-User beside it, never instead', async () => {
    expect((await call(port, 'PUT', '/v1/services/echo', { token: ROOT, body: serviceOf({ v1: 1, v2: 2 }) })).status).toBe(201);
    const created = await call(port, 'POST', '/v1/rollouts', {
      token: ALICE,
      headers: { 'x-sluice-user': 'bob' },
      body: { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: { duration: '1h' } }, { setWeight: 50 }] },
    });
    expect(created.status).toBe(201);
    expect(created.body.history[0]).toMatchObject({ event: 'Created', by: 'alice (for bob)' });
    const paused = await call(port, 'POST', '/v1/rollouts/echo/pause', { token: ALICE, body: {} });
    expect(paused.body.history.at(-1)).toMatchObject({ event: 'PausedByUser', by: 'alice' });
    // Claiming to be someone else through the header changes nothing about who is recorded.
    const resumed = await call(port, 'POST', '/v1/rollouts/echo/resume', { token: ROOT, headers: { 'x-sluice-user': 'alice' }, body: {} });
    expect(resumed.body.history.at(-1).by).toBe('root (for alice)');
    // --api-token is an admin named "admin".
    const legacy = await call(port, 'POST', '/v1/rollouts/echo/pause', { token: LEGACY, body: {} });
    expect(legacy.body.history.at(-1).by).toBe('admin');
  });

  it('writes a line for every change and every refusal, and only those', async () => {
    expect((await call(port, 'GET', '/v1/services', { token: VIC })).status).toBe(200); // a read: not audited
    expect((await call(port, 'GET', '/v1/services')).status).toBe(401);
    expect((await call(port, 'POST', '/v1/rollouts/echo/resume', { token: VIC, body: {} })).status).toBe(403);
    expect((await call(port, 'POST', '/v1/rollouts/echo/resume', { token: 'wrong', body: {} })).status).toBe(401);
    const signIn = await call(port, 'POST', '/v1/session', { body: { token: VIC } });
    expect((await call(port, 'DELETE', '/v1/session', { cookie: cookieOf(signIn) })).status).toBe(204);
    await eventually(() => auditLines().length >= 10);
    const lines = auditLines();
    const brief = lines.map((l) => [l.method, l.path, l.status, l.actor, l.role, l.for]);
    expect(brief).toEqual([
      ['PUT', '/v1/services/echo', 201, 'root', 'admin', undefined],
      ['POST', '/v1/rollouts', 201, 'alice', 'operator', 'bob'],
      ['POST', '/v1/rollouts/echo/pause', 200, 'alice', 'operator', undefined],
      ['POST', '/v1/rollouts/echo/resume', 200, 'root', 'admin', 'alice'],
      ['POST', '/v1/rollouts/echo/pause', 200, 'admin', 'admin', undefined],
      ['GET', '/v1/services', 401, null, null, undefined],
      ['POST', '/v1/rollouts/echo/resume', 403, 'vic', 'viewer', undefined],
      ['POST', '/v1/rollouts/echo/resume', 401, null, null, undefined],
      ['POST', '/v1/session', 200, 'vic', 'viewer', undefined],
      ['DELETE', '/v1/session', 204, 'vic', 'viewer', undefined], // signed out by the session's cookie
    ]);
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(expect.arrayContaining(['actor', 'method', 'path', 'role', 'source', 'status', 'time', 'via']));
      expect(l.source).toBe('127.0.0.1');
      expect(Number.isNaN(Date.parse(l.time))).toBe(false);
    }
    expect(lines[8].via).toBe('session');
    expect(lines[0].via).toBe('token');
  });

  it('reloads the tokens file; a broken file keeps the last good set', async () => {
    expect((await call(port, 'GET', '/v1/fleet', { token: CAROL })).status).toBe(401);
    writeTokens([{ name: 'carol', role: 'viewer', token: CAROL }, { name: 'alice', role: 'viewer', token: ALICE }], tokensFile);
    await eventually(async () => (await call(port, 'GET', '/v1/fleet', { token: CAROL })).status === 200);
    expect((await call(port, 'GET', '/v1/fleet', { token: ROOT })).status).toBe(401); // root is gone
    const demoted = await call(port, 'POST', '/v1/rollouts/echo/resume', { token: ALICE, body: {} });
    expect(demoted.status).toBe(403); // alice is a viewer now
    expect(demoted.body.error.message).toContain('needs the operator role');

    fs.writeFileSync(`${tokensFile}.tmp`, `tokens:\n  - {name: carol, role: boss, sha256: ${sha256Hex(CAROL)}}\n`);
    fs.renameSync(`${tokensFile}.tmp`, tokensFile);
    await eventually(() => logLines.some((l) => l.includes('API tokens file not reloaded')));
    const complaint = JSON.parse(logLines.find((l) => l.includes('API tokens file not reloaded'))!);
    expect(complaint.problem).toMatch(/^tokens\[0\]\.role: /);
    expect((await call(port, 'GET', '/v1/fleet', { token: CAROL })).status).toBe(200); // still the last good set
    expect((await call(port, 'GET', '/v1/fleet', { token: LEGACY })).status).toBe(200); // --api-token stays
  });

  it('keeps tokens and their hashes out of the audit log and the server log, and keeps every line at shutdown', async () => {
    const refused = () => auditLines().filter((l) => l.status === 401 && l.path === '/v1/rollouts/echo/pause').length;
    const before = refused();
    const answers = await Promise.all(Array.from({ length: 50 }, () => call(port, 'POST', '/v1/rollouts/echo/pause', { token: 'nope', body: {} })));
    expect(answers.every((a) => a.status === 401)).toBe(true);
    stopped = true;
    await sluice.stop(); // a clean shutdown writes what is pending
    expect(refused()).toBe(before + 50);
    const everything = fs.readFileSync(auditFile, 'utf8') + logLines.join('');
    for (const secret of [ALICE, ROOT, VIC, CAROL, LEGACY]) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(sha256Hex(secret));
    }
    expect(logLines.length).toBeGreaterThan(50);
  });
});

describe('audit log file', () => {
  const entry = (path: string): AuditEntry => ({ time: new Date().toISOString(), actor: 'a', role: 'admin', via: 'token', source: '127.0.0.1', method: 'POST', path, status: 200 });

  it('keeps lines the disk refused and writes them once it accepts again', async () => {
    const file = path.join(tempDir('sluice-audit-'), 'audit.log');
    const errors: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        errors.push(String(chunk));
        done();
      },
    });
    const audit = await AuditLog.open(file, pino({ level: 'error' }, sink));
    // A directory where the file should be: every append fails (as root, permissions would not).
    fs.rmSync(file);
    fs.mkdirSync(file);
    audit.write(entry('/first'));
    await eventually(() => errors.some((l) => l.includes('audit log write failed; retrying')));
    audit.write(entry('/second'));
    fs.rmdirSync(file);
    await eventually(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('/second'));
    audit.write(entry('/third'));
    await audit.close();
    expect(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).path)).toEqual(['/first', '/second', '/third']);
  });

  it('keeps writing after several refused writes were retried (one retry at a time, never an idle flush)', async () => {
    const file = path.join(tempDir('sluice-audit-'), 'audit.log');
    const audit = await AuditLog.open(file, pino({ level: 'silent' }));
    fs.rmSync(file);
    fs.mkdirSync(file);
    audit.write(entry('/a')); // refused: a retry is due in a second
    await new Promise((r) => setTimeout(r, 50));
    audit.write(entry('/b')); // refused again while that retry waits
    await new Promise((r) => setTimeout(r, 50));
    fs.rmdirSync(file);
    await eventually(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('/b'), 5000);
    await new Promise((r) => setTimeout(r, 1500)); // any other retry has fired by now, with nothing to write
    audit.write(entry('/c'));
    await eventually(() => fs.readFileSync(file, 'utf8').includes('/c'), 3000);
    await audit.close();
    expect(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).path)).toEqual(['/a', '/b', '/c']);
  });

  it('refuses to start when the file cannot be written', async () => {
    const dir = tempDir('sluice-audit-');
    fs.mkdirSync(path.join(dir, 'audit.log'));
    await expect(AuditLog.open(path.join(dir, 'audit.log'), pino({ level: 'silent' }))).rejects.toThrow(/^--audit-log .*audit\.log: EISDIR/);
  });
});
