// The Prometheus provider: one PromQL instant query per metric (POST /api/v1/query) against an
// endpoint the operator configured (`--prometheus NAME=URL`), reduced to a single number.
// What comes back from the endpoint never leaves this module except as that number: errors are
// fixed-form ("HTTP 500", "not a single value: ..."), so the analysis API cannot be used to read
// what some URL answers. Responses are bounded in size and time. Anything that is not one number
// is an Error; analysis then counts the metric as inconclusive, never as failed.
import type { AnalysisMetric, RolloutSpec } from '../model/rollout.js';

export interface QueryOptions {
  /** Evaluation time (the end of the analysis window). */
  at: Date;
  timeoutMs: number;
  /** Largest response accepted (default 1 MiB). */
  maxBytes?: number;
}

export const MAX_RESPONSE_BYTES = 1024 * 1024;

interface ApiResponse {
  status?: unknown;
  errorType?: unknown;
  data?: { resultType?: unknown; result?: unknown };
}

type Sample = [number, string];

/** One instant query against `baseUrl`; the returned number or an Error with a fixed-form message. */
export async function queryPrometheus(baseUrl: string, query: string, opts: QueryOptions): Promise<number> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/v1/query`;
  const body = new URLSearchParams({ query, time: (opts.at.getTime() / 1000).toFixed(3) });
  const maxBytes = opts.maxBytes ?? MAX_RESPONSE_BYTES;
  let text: string;
  let status: number;
  try {
    // A redirect would send the query somewhere the operator did not configure.
    const res = await fetch(url, { method: 'POST', body, redirect: 'manual', signal: AbortSignal.timeout(opts.timeoutMs) });
    status = res.status;
    text = await readBounded(res, maxBytes);
  } catch (err) {
    const e = err as Error & { cause?: { code?: unknown } };
    if (e.name === 'TimeoutError') throw new Error(`no answer in ${opts.timeoutMs} ms`);
    if (e instanceof TooLarge) throw new Error(`response larger than ${maxBytes} bytes`);
    const code = typeof e.cause?.code === 'string' && /^[A-Z_]{1,32}$/.test(e.cause.code) ? ` (${e.cause.code})` : '';
    throw new Error(`connection failed${code}`);
  }
  let json: ApiResponse;
  try {
    json = JSON.parse(text) as ApiResponse;
  } catch {
    throw new Error(status === 200 ? 'answer is not Prometheus JSON' : `HTTP ${status}`);
  }
  if (json?.status !== 'success' || !json.data) {
    // errorType is one of a few words (bad_data, timeout, execution, ...); the error text is not repeated.
    const type = typeof json?.errorType === 'string' && /^[a-z_]{1,32}$/.test(json.errorType) ? json.errorType : null;
    throw new Error(type ? `prometheus refused the query (${type}; HTTP ${status})` : `HTTP ${status}`);
  }
  const { resultType, result } = json.data;
  if (resultType === 'scalar' && Array.isArray(result)) return sampleValue(result[1]);
  if (resultType !== 'vector' || !Array.isArray(result)) {
    const kind = typeof resultType === 'string' && /^[a-z]{1,16}$/.test(resultType) ? `a ${resultType}` : 'no vector';
    throw new Error(`not a single value: the query gave ${kind}; analysis needs one number (an instant vector with one series, or a scalar)`);
  }
  if (result.length === 0) throw new Error('not a single value: the query returned no series (no data in the window?)');
  if (result.length > 1) throw new Error(`not a single value: the query returned ${result.length} series; aggregate them to one, e.g. sum(...)`);
  return sampleValue((result[0] as { value?: Sample }).value?.[1]);
}

class TooLarge extends Error {}

/** The body as text, refusing more than `maxBytes` (announced or actually sent). */
async function readBounded(res: Response, maxBytes: number): Promise<string> {
  if (Number(res.headers.get('content-length') ?? 0) > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new TooLarge();
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new TooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Sample values are strings: "0.97", "NaN", "+Inf", "-Inf"; anything else is not a number. */
function sampleValue(text: unknown): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = typeof text === 'string' && text.trim() !== '' ? Number(text) : NaN;
  if (Number.isNaN(n)) throw new Error('not a single value: the sample is not a number');
  return n;
}

/** The endpoints configured on this server, by name. */
export class PrometheusProviders {
  private readonly urls: ReadonlyMap<string, string>;

  constructor(urls: Readonly<Record<string, string>> = {}) {
    this.urls = new Map(Object.entries(urls));
  }

  names(): string[] {
    return [...this.urls.keys()].sort();
  }

  query(provider: string, query: string, opts: QueryOptions): Promise<number> {
    const url = this.urls.get(provider);
    if (url === undefined) return Promise.reject(new Error(`provider "${provider}" is not configured on this server`));
    return queryPrometheus(url, query, opts);
  }

  /** Each Prometheus metric of `spec` that names a provider this server does not have: field path and message. */
  unknownIn(spec: RolloutSpec): { field: string; message: string }[] {
    const analyses = [
      ...(spec.analysis ? [{ at: 'analysis', metrics: spec.analysis.metrics }] : []),
      ...spec.steps.flatMap((s, i) => (s.analysis ? [{ at: `steps[${i}].analysis`, metrics: s.analysis.metrics }] : [])),
    ];
    const known = this.names();
    const problems: { field: string; message: string }[] = [];
    for (const { at, metrics } of analyses)
      metrics.forEach((m: AnalysisMetric, i) => {
        if (m.prometheus && !this.urls.has(m.prometheus.provider))
          problems.push({
            field: `${at}.metrics[${i}].prometheus.provider`,
            message: `provider "${m.prometheus.provider}" is not configured on this server (${known.length ? `configured: ${known.join(', ')}` : 'none is: start it with --prometheus NAME=URL'})`,
          });
      });
    return problems;
  }
}
