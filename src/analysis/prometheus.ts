// The Prometheus provider: one PromQL instant query per metric against the HTTP API
// (POST /api/v1/query), reduced to a single number. Anything else (an error, no series, several
// series) is reported as an Error whose message says what to change; analysis then counts the
// metric as inconclusive, never as failed.

export interface QueryOptions {
  /** Evaluation time (the end of the analysis window). */
  at: Date;
  timeoutMs: number;
}

interface ApiResponse {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: 'scalar' | 'vector' | 'matrix' | 'string'; result: unknown };
}

type Sample = [number, string];

export async function queryPrometheus(address: string, query: string, opts: QueryOptions): Promise<number> {
  const url = `${address.replace(/\/+$/, '')}/api/v1/query`;
  const body = new URLSearchParams({ query, time: (opts.at.getTime() / 1000).toFixed(3) });
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body, signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    const e = err as Error;
    throw new Error(e.name === 'TimeoutError' ? `no answer from ${url} in ${opts.timeoutMs} ms` : `${url}: ${e.message}${e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ''}`);
  }
  let json: ApiResponse;
  try {
    json = (await res.json()) as ApiResponse;
  } catch {
    throw new Error(`${url} answered HTTP ${res.status} without Prometheus JSON`);
  }
  if (json.status !== 'success' || !json.data) throw new Error(`prometheus ${json.errorType ?? `HTTP ${res.status}`}: ${json.error ?? 'no data'}`);
  const { resultType, result } = json.data;
  if (resultType === 'scalar') return sampleValue((result as Sample)[1]);
  if (resultType !== 'vector') throw new Error(`query gave a ${resultType}; analysis needs one number (an instant vector with one series, or a scalar)`);
  const series = result as { metric: Record<string, string>; value: Sample }[];
  if (series.length === 0) throw new Error('query returned no series (no data in the window?)');
  if (series.length > 1) throw new Error(`query returned ${series.length} series; aggregate them to one, e.g. sum(...)`);
  return sampleValue(series[0]!.value[1]);
}

/** Sample values are strings: "0.97", "NaN", "+Inf", "-Inf". */
function sampleValue(text: string): number {
  return text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text);
}
