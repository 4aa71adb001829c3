// Starts a real Sluice (gRPC + HTTP sockets on ephemeral ports, a temporary data dir).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ConfigSchema } from '../../src/config.js';
import type { Config } from '../../src/config.js';
import { startSluice } from '../../src/main.js';
import type { Sluice } from '../../src/main.js';

export interface TestSluice extends Sluice {
  dataDir: string;
  api<T = any>(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
}

export function tempDir(prefix = 'sluice-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startTestSluice(overrides: Partial<Config> = {}): Promise<TestSluice> {
  const dataDir = overrides.dataDir ?? tempDir();
  const config = ConfigSchema.parse({ xdsPort: 0, httpPort: 0, dataDir, logLevel: 'silent', ...overrides });
  const sluice = await startSluice(config, pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' }));
  return Object.assign(sluice, {
    dataDir,
    async api(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`http://127.0.0.1:${sluice.httpPort}${urlPath}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  });
}

/** Polls until `probe` returns a truthy value or the time is up. */
export async function eventually<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A service body with one loopback endpoint per version: `serviceOf({ v1: 50051, v2: 50052 })`. */
export function serviceOf(ports: Record<string, number>, stable = Object.keys(ports)[0]!): { versions: Record<string, { endpoints: { address: string; port: number }[] }>; stable: string } {
  return {
    versions: Object.fromEntries(Object.entries(ports).map(([v, port]) => [v, { endpoints: [{ address: '127.0.0.1', port }] }])),
    stable,
  };
}
