// Steady HTTP load through Envoy, reporting every few seconds which share of the answers came
// from which version (the backends' `x-version` header). This is what a person watches while a
// rollout moves: "v1 80% · v2 20%", then a rollback snapping back to "v1 100%".
import http from 'node:http';

export interface LoadgenOptions {
  /** Where to send requests, e.g. http://envoy:10000/ */
  url: string;
  /** Host header: selects the service's virtual host in Envoy (one of its domains). */
  host?: string;
  /** Requests per second, spread evenly. */
  rps?: number;
  /** How often to print a report line. */
  intervalMs?: number;
  /** Extra request headers, e.g. { 'x-canary': 'true' } to join a header cohort. */
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Where report lines go (default: stdout). */
  write?: (line: string) => void;
}

/** Counts of the answers received in one period. */
export interface Tally {
  answers: number;
  /** Per version: answers received and how many of them were not 2xx. */
  versions: Record<string, { answers: number; failed: number }>;
  /** Answers without a version (Envoy's own 404/503) by status, and network errors by code. */
  unversioned: Record<string, number>;
}

export interface Loadgen {
  /** Stops sending, waits for requests in flight, and returns the counts since the last report. */
  stop(): Promise<Tally>;
}

const emptyTally = (): Tally => ({ answers: 0, versions: {}, unversioned: {} });

export function startLoadgen(opts: LoadgenOptions): Loadgen {
  const rps = opts.rps ?? 20;
  const intervalMs = opts.intervalMs ?? 5000;
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (!(rps > 0)) throw new Error(`rps must be more than 0, got ${rps}`);
  const url = new URL(opts.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const headers = { ...opts.headers, ...(opts.host ? { host: opts.host } : {}) };

  let tally = emptyTally();
  let periodStart = Date.now();
  const inFlight = new Set<Promise<void>>();

  const record = (version: string | undefined, outcome: string, ok: boolean) => {
    tally.answers++;
    if (version === undefined) tally.unversioned[outcome] = (tally.unversioned[outcome] ?? 0) + 1;
    else {
      const v = (tally.versions[version] ??= { answers: 0, failed: 0 });
      v.answers++;
      if (!ok) v.failed++;
    }
  };

  const fire = () => {
    const done = new Promise<void>((resolve) => {
      const req = http.get(url, { agent, headers, timeout: opts.timeoutMs ?? 5000 }, (res) => {
        const version = res.headers['x-version'];
        const status = res.statusCode ?? 0;
        record(typeof version === 'string' ? version : undefined, String(status), status >= 200 && status < 300);
        res.resume(); // drain the body so the connection is reused
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        record(undefined, err.code ?? 'ERROR', false);
        resolve();
      });
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  // Send on a schedule fixed from the start, so a slow tick catches up instead of drifting.
  const startedAt = Date.now();
  let sent = 0;
  const sender = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * rps) - sent;
    for (let i = 0; i < due; i++) fire();
    sent += Math.max(due, 0);
  }, Math.max(5, Math.floor(1000 / rps)));

  const takePeriod = (): Tally => {
    const t = tally;
    tally = emptyTally();
    return t;
  };
  const reporter = setInterval(() => {
    const now = Date.now();
    write(formatReport(takePeriod(), now - periodStart, new Date(now)));
    periodStart = now;
  }, intervalMs);

  return {
    async stop() {
      clearInterval(sender);
      clearInterval(reporter);
      await Promise.all(inFlight);
      agent.destroy();
      return takePeriod();
    },
  };
}

/** One report line: `12:00:05  100 answers in 5.0s  v1 78.0%  v2 20.0% (3 failed)  no version 2.0% (503×2)`. */
export function formatReport(t: Tally, elapsedMs: number, at: Date): string {
  const pct = (n: number) => `${((100 * n) / Math.max(t.answers, 1)).toFixed(1)}%`;
  const parts = [`${at.toISOString().slice(11, 19)}  ${t.answers} answers in ${(elapsedMs / 1000).toFixed(1)}s`];
  for (const [version, v] of Object.entries(t.versions).sort(([a], [b]) => a.localeCompare(b)))
    parts.push(`${version} ${pct(v.answers)}${v.failed ? ` (${v.failed} failed)` : ''}`);
  const unversioned = Object.entries(t.unversioned);
  const none = unversioned.reduce((sum, [, n]) => sum + n, 0);
  if (none) parts.push(`no version ${pct(none)} (${unversioned.map(([what, n]) => `${what}×${n}`).join(', ')})`);
  return parts.join('  ');
}
