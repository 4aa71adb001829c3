// Webhook alerts against a real HTTP endpoint: what is sent, in which shape, and retries.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookNotifier, type WebhookOptions } from '../../src/alerts/webhook.js';
import { RolloutSpecSchema, type RolloutState } from '../../src/model/rollout.js';
import { createRollout, transition, type RolloutEvent } from '../../src/rollout/machine.js';
import { eventually } from '../support/sluice.js';

const log = pino({ level: 'silent' });
const servers: http.Server[] = [];

/** An endpoint answering with the given statuses in turn (then 200); `null` never answers. */
async function endpoint(statuses: (number | null)[] = []) {
  const bodies: unknown[] = [];
  let calls = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const status = calls < statuses.length ? statuses[calls] : 200;
      calls++;
      if (status === null) return; // hang
      if (status === 200) bodies.push(JSON.parse(body));
      res.writeHead(status!).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, calls: () => calls };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const t = (ms: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + ms);
const spec = RolloutSpecSchema.parse({ service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: {} }] });
const apply = (s: RolloutState, e: RolloutEvent, ms: number, by = 'bob') => transition(s, e, t(ms), by).state;
const notifier = (url: string, extra: Partial<WebhookOptions> = {}, known: RolloutState[] = []) =>
  new WebhookNotifier({ url, format: 'json', log, backoffMs: 10, ...extra }, known);

describe('webhooks', () => {
  it('post one JSON event per notable transition; routine ones stay quiet', async () => {
    const hook = await endpoint();
    const n = notifier(hook.url);
    let s = createRollout('r1', spec, 'v1', t(0), 'alice');
    n.onChange(s); // Created, WeightSet
    s = apply(s, { type: 'fleetAcked', canaryWeight: 10, nodes: 1 }, 1, 'fleet'); // WeightAcked, StepCompleted: quiet; Paused
    n.onChange(s);
    s = apply(s, { type: 'rollback', reason: 'errors up' }, 2);
    n.onChange(s);
    await eventually(() => hook.bodies.length === 4);
    expect((hook.bodies as { type: string }[]).map((b) => b.type).sort()).toEqual(['Created', 'Paused', 'RolledBack', 'WeightSet']);
    expect(hook.bodies.find((b) => (b as { type: string }).type === 'RolledBack')).toEqual({
      type: 'RolledBack',
      service: 'echo',
      rollout: 'r1',
      phase: 'RolledBack',
      stable: 'v1',
      canary: 'v2',
      weights: { v1: 100, v2: 0 },
      at: t(2).toISOString(),
      by: 'bob',
      reason: 'errors up',
      step: 1,
    });
  });

  it('speak Slack’s incoming-webhook shape on request', async () => {
    const hook = await endpoint();
    const s = apply(createRollout('r1', spec, 'v1', t(0), 'alice'), { type: 'rollback', reason: 'analysis says no' }, 1, 'analysis');
    notifier(hook.url, { format: 'slack' }, [createRollout('r1', spec, 'v1', t(0), 'alice')]).onChange(s);
    await eventually(() => hook.bodies.length === 1);
    expect(hook.bodies[0]).toEqual({ text: ':rotating_light: *echo* RolledBack (v2 over v1; v1 100%, v2 0%) by analysis: analysis says no' });
  });

  it('do not repeat what was told before a restart', async () => {
    const hook = await endpoint();
    const s = createRollout('r1', spec, 'v1', t(0), 'alice');
    const n = notifier(hook.url, {}, [s]);
    n.onChange(apply(s, { type: 'pause' }, 1));
    await eventually(() => hook.bodies.length === 1);
    expect(hook.bodies[0]).toMatchObject({ type: 'PausedByUser' });
  });

  it('retry server errors with back-off, but not other client errors', async () => {
    const flaky = await endpoint([503, 500]);
    notifier(flaky.url).onChange(createRollout('r1', spec, 'v1', t(0), 'alice'));
    await eventually(() => flaky.bodies.length === 2); // Created and WeightSet, each after retries
    expect(flaky.calls()).toBe(4);

    const refusing = await endpoint([400, 400, 400]);
    notifier(refusing.url).onChange(createRollout('r1', spec, 'v1', t(0), 'alice'));
    await eventually(() => refusing.calls() === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(refusing.calls()).toBe(2);
    expect(refusing.bodies).toEqual([]);
  });

  it('never block the caller, and bound what waits on a dead endpoint', async () => {
    const dead = await endpoint([null, null, null, null]);
    const n = notifier(dead.url, { maxPending: 3, timeoutMs: 200, attempts: 1 });
    let s = createRollout('r1', spec, 'v1', t(0), 'alice');
    n.onChange(s);
    s = apply(s, { type: 'pause' }, 1);
    n.onChange(s);
    s = apply(s, { type: 'rollback' }, 2);
    n.onChange(s);
    // The caller got control back before any delivery reached the endpoint.
    expect(dead.calls()).toBe(0);
    await eventually(() => dead.calls() === 3); // the fourth was dropped
    await new Promise((r) => setTimeout(r, 300));
    expect(dead.calls()).toBe(3);
  });
});

/** What a receiver does (README "Webhook signatures"): recompute the HMAC over "<timestamp>.<raw body>", compare in constant time, refuse stale times. */
function verify(secret: string, headers: http.IncomingHttpHeaders, rawBody: string, nowSec = Date.now() / 1000): boolean {
  const timestamp = String(headers['x-sluice-timestamp'] ?? '');
  const signature = String(headers['x-sluice-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSec - Number(timestamp)) > 300) return false;
  const expected = 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex');
  return signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

describe('webhook signatures', () => {
  const SECRET = 'whsec-0123456789abcdef';

  /** Records each delivery's headers and raw body; answers with `statuses` in turn, then 200. */
  async function receiver(statuses: number[] = []) {
    const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.writeHead(statuses.shift() ?? 200).end();
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/path-credential`, got };
  }

  it('sign every attempt so the receiver can verify it, and a forgery or a changed body fails', async () => {
    const hook = await receiver([503]);
    notifier(hook.url, { secret: SECRET }).onChange(createRollout('r1', spec, 'v1', t(0), 'alice'));
    await eventually(() => hook.got.length === 3); // Created (after one retry) and WeightSet
    for (const d of hook.got) {
      expect(d.headers['x-sluice-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(verify(SECRET, d.headers, d.body)).toBe(true);
      expect(verify('another-secret-value', d.headers, d.body)).toBe(false);
      expect(verify(SECRET, d.headers, d.body.replace('"alice"', '"mallory"'))).toBe(false);
      expect(verify(SECRET, d.headers, d.body, Number(d.headers['x-sluice-timestamp']) + 3600)).toBe(false); // a replay an hour later
    }
  });

  it('send no signature without a secret, and never log the secret or the URL path', async () => {
    const plain = await receiver();
    notifier(plain.url).onChange(createRollout('r1', spec, 'v1', t(0), 'alice'));
    await eventually(() => plain.got.length === 2);
    expect(plain.got[0]!.headers['x-sluice-signature']).toBeUndefined();

    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const refusing = await receiver([400, 400]);
    new WebhookNotifier({ url: refusing.url, format: 'json', log: pino({ level: 'trace' }, sink), secret: SECRET, backoffMs: 10 }).onChange(createRollout('r1', spec, 'v1', t(0), 'alice'));
    await eventually(() => lines.filter((l) => l.includes('webhook delivery failed')).length === 2);
    expect(lines.join('')).toContain('127.0.0.1');
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).not.toContain('path-credential');
  });
});
