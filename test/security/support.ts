// What the security tests share: a Sluice started with a log the test can read, mutual-TLS
// credentials, and telemetry streams (LRS, Envoy metrics service) over TLS.
import fs from 'node:fs';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { ConfigSchema } from '../../src/config.js';
import type { Config } from '../../src/config.js';
import type { Sluice } from '../../src/main.js';
import { startSluice } from '../../src/main.js';
import { messageType } from '../../src/xds/protos.js';
import type { Issued } from '../support/certs.js';
import { tempDir } from '../support/sluice.js';

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface LoggedSluice extends Sluice {
  /** Every log line so far, parsed. */
  lines: LogLine[];
  api<T = any>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }>;
}

/** A pino logger that keeps its lines in memory. */
export function memoryLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

export async function startLoggedSluice(overrides: Partial<Config>): Promise<LoggedSluice> {
  const config = ConfigSchema.parse({ xdsPort: 0, httpPort: 0, dataDir: tempDir('sluice-sec-'), ...overrides });
  const { log, lines } = memoryLog();
  const sluice = await startSluice(config, log);
  return Object.assign(sluice, {
    lines,
    async api(method: string, urlPath: string, body?: unknown) {
      const res = await fetch(`http://127.0.0.1:${sluice.httpPort}${urlPath}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  });
}

/** Client credentials: trust `ca`, present `who` (none: no client certificate); `seen` gets the
 *  server's certificate of each handshake. */
export function clientCreds(ca: Buffer, who?: Issued, seen?: (cert: PeerCertificate) => void): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(ca, who?.keyPem ?? null, who?.certPem ?? null, {
    checkServerIdentity: (_host, cert) => {
      seen?.(cert);
      return undefined; // the server certificate names 127.0.0.1; the CA check still applies
    },
  });
}

/** Writes `text` to `file` atomically (a rename), as a deployment tool would. */
export function replaceFile(file: string, text: string | Buffer): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

const identityCodec = (b: Buffer) => b;
const encode = (type: string, value: object) => {
  const t = messageType(type);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
};

export interface TelemetryStream {
  status: Promise<grpc.StatusObject>;
  /** Resolves once the server answered the first message (LRS only). */
  answered: Promise<void>;
  send(clusters: { name: string; ok: number; errors: number }[]): void;
  close(): void;
}

/** A load reporting stream (what a proxyless gRPC client opens) claiming `node`. */
export function lrsStream(port: number, creds: grpc.ChannelCredentials, node: { id: string; cluster?: string }): TelemetryStream {
  const client = new grpc.Client(`127.0.0.1:${port}`, creds, { 'grpc.use_local_subchannel_pool': 1 });
  const call = client.makeBidiStreamRequest('/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats', identityCodec, identityCodec);
  const answered = new Promise<void>((resolve) => call.once('data', () => resolve()));
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  let first = true;
  return {
    status,
    answered,
    send(clusters) {
      call.write(
        encode('envoy.service.load_stats.v3.LoadStatsRequest', {
          ...(first ? { node: { id: node.id, cluster: node.cluster ?? '' } } : {}),
          cluster_stats: clusters.map((c) => ({
            cluster_name: c.name,
            upstream_locality_stats: [{ locality: { zone: 'z' }, total_successful_requests: c.ok, total_error_requests: c.errors, total_issued_requests: c.ok + c.errors }],
            load_report_interval: { seconds: 1 },
          })),
        }),
      );
      first = false;
    },
    close() {
      call.end();
      client.close();
    },
  };
}

/** An Envoy metrics service stream claiming `node`; `send` flushes cumulative counters. */
export function envoyMetricsStream(port: number, creds: grpc.ChannelCredentials, node: { id: string; cluster?: string }): TelemetryStream {
  const client = new grpc.Client(`127.0.0.1:${port}`, creds, { 'grpc.use_local_subchannel_pool': 1 });
  let resolveStatus!: (s: grpc.StatusObject) => void;
  const status = new Promise<grpc.StatusObject>((r) => (resolveStatus = r));
  const call = client.makeClientStreamRequest('/envoy.service.metrics.v3.MetricsService/StreamMetrics', identityCodec, identityCodec, () => undefined);
  call.on('status', resolveStatus);
  call.on('error', () => undefined);
  const totals = new Map<string, { ok: number; errors: number }>();
  let first = true;
  return {
    status,
    answered: Promise.resolve(),
    send(clusters) {
      for (const c of clusters) {
        const t = totals.get(c.name) ?? { ok: 0, errors: 0 };
        t.ok += c.ok;
        t.errors += c.errors;
        totals.set(c.name, t);
      }
      const counter = (name: string, value: number) => ({ name, type: 'COUNTER', metric: [{ counter: { value } }] });
      call.write(
        encode('envoy.service.metrics.v3.StreamMetricsMessage', {
          ...(first ? { identifier: { node: { id: node.id, cluster: node.cluster ?? '', user_agent_name: 'envoy' } } } : {}),
          envoy_metrics: [...totals].flatMap(([name, t]) => [
            counter(`cluster.${name}.upstream_rq_2xx`, t.ok),
            counter(`cluster.${name}.upstream_rq_5xx`, t.errors),
            counter(`cluster.${name}.upstream_rq_completed`, t.ok + t.errors),
          ]),
        }),
      );
      first = false;
    },
    close() {
      call.end();
      client.close();
    },
  };
}
