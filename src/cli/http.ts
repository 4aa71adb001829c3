// The CLI's HTTP client: one Sluice server (URL with an optional path prefix, bearer token),
// JSON in and out, and errors that say what went wrong in terms a user can act on.
import os from 'node:os';
import { createParser } from 'eventsource-parser';

export interface ServerTarget {
  /** Base URL; a path prefix is kept (`https://host/sluice` → `https://host/sluice/v1/...`). */
  server: string;
  token?: string;
  /** Per request, unless a call asks for more. */
  timeoutMs: number;
}

/** The server answered 4xx/5xx. */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { field?: string; message?: string }[],
    readonly url: string,
  ) {
    super(message);
  }
}

/** No HTTP answer at all: refused, DNS, TLS, timeout, reset. */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly cause: string,
  ) {
    super(`cannot reach ${url}: ${cause}`);
  }
}

/** Parses and checks --server; a trailing slash is dropped so paths join cleanly. */
export function parseServerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--server "${raw}": not a URL (expected e.g. http://127.0.0.1:8080 or https://host/prefix)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--server "${raw}": only http:// and https:// are supported`);
  if (url.search || url.hash) throw new Error(`--server "${raw}": no query or fragment, only scheme, host, port and an optional path prefix`);
  return url.toString().replace(/\/+$/, '');
}

const TLS_CODES = /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;

/** Turns fetch's "fetch failed" into the cause underneath (undici nests the system error). */
export function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs / 1000}s (timeout; --request-timeout to change it)`;
  let e: unknown = err;
  const chain: { code?: string; message?: string; hostname?: string }[] = [];
  while (e && typeof e === 'object' && chain.length < 5) {
    chain.push(e as { code?: string; message?: string });
    e = (e as { cause?: unknown }).cause;
  }
  const withCode = chain.find((c) => typeof c.code === 'string' && !c.code.startsWith('UND_ERR_SOCKET'));
  const code = withCode?.code ?? chain.find((c) => c.code)?.code ?? '';
  const detail = (withCode ?? chain.at(-1))?.message ?? String(err);
  if (detail === 'bad port') return 'fetch refuses this port (it is on the "bad ports" list): use another port';
  if (code === 'ECONNREFUSED') return `connection refused (is Sluice running and listening there?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') return `DNS lookup failed (${code}: ${detail})`;
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return `timeout (${code}: ${detail})`;
  if (code === 'ECONNRESET' || code.startsWith('UND_ERR_SOCKET')) return `connection closed by the other side (${detail})`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `network unreachable (${code})`;
  if (TLS_CODES.test(code) || /ssl|tls|certificate/i.test(detail)) return `TLS failed (${code || 'TLS'}: ${detail}; does the URL's scheme match the server, http:// or https://?)`;
  return code ? `${code}: ${detail}` : detail;
}

/** Who runs the CLI, as the server's audit trail accepts it (`[\w.@-]`, short). */
function userName(): string {
  let name = process.env.USER ?? '';
  try {
    name ||= os.userInfo().username;
  } catch {
    /* no passwd entry (some containers) */
  }
  return name.replace(/[^\w.@-]/g, '').slice(0, 40) || 'unknown';
}

export class SluiceClient {
  constructor(readonly target: ServerTarget) {}

  url(path: string): string {
    return this.target.server + path;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.target.token ? { authorization: `Bearer ${this.target.token}` } : {}),
      // The audit trail records who acted (`by` in a rollout's history).
      'x-sluice-user': `cli:${userName()}`,
      ...extra,
    };
  }

  private async send(method: string, path: string, init: RequestInit, timeoutMs: number): Promise<Response> {
    const url = this.url(path);
    try {
      return await fetch(url, { method, ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new UnreachableError(url, describeFetchError(err, timeoutMs));
    }
  }

  /** A JSON request; the parsed answer, or null for 204. Throws ServerError on 4xx/5xx. */
  async request<T = unknown>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    return (await this.exchange<T>(method, path, body, opts)).body;
  }

  /** As `request`, with the HTTP status (201 created vs 200 replaced). */
  async exchange<T = unknown>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<{ status: number; body: T }> {
    const timeoutMs = opts.timeoutMs ?? this.target.timeoutMs;
    const res = await this.send(
      method,
      path,
      {
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      },
      timeoutMs,
    );
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new UnreachableError(this.url(path), describeFetchError(err, timeoutMs));
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      if (res.ok) throw new ServerError(res.status, 'bad_response', `the server answered ${res.status} with a body that is not JSON (is --server a Sluice server?)`, [], this.url(path));
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
      const message = e?.message ?? (text.trim().slice(0, 300) || res.statusText);
      const details = Array.isArray(e?.details) ? (e.details as { field?: string; message?: string }[]) : [];
      throw new ServerError(res.status, e?.code ?? 'http_error', message, details, this.url(path));
    }
    return { status: res.status, body: json as T };
  }

  /** GET that answers undefined on 404 instead of throwing. */
  async getOptional<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (err) {
      if (err instanceof ServerError && err.status === 404 && err.code === 'not_found') return undefined;
      throw err;
    }
  }

  /**
   * Server-sent events from `path` until `signal` aborts or the server ends the stream.
   * Resolves when the stream ends; rejects with UnreachableError/ServerError when it cannot open.
   */
  async events(path: string, onEvent: (event: string, data: string) => void, signal: AbortSignal): Promise<void> {
    const url = this.url(path);
    // Only the wait for the answer's headers is timed: the stream itself lives until `signal`.
    const ac = new AbortController();
    const cancel = () => ac.abort(signal.reason);
    signal.addEventListener('abort', cancel, { once: true });
    const timer = setTimeout(() => ac.abort(new DOMException('no answer', 'TimeoutError')), this.target.timeoutMs);
    const res = await this.send('GET', path, { headers: this.headers({ accept: 'text/event-stream' }), signal: ac.signal }, this.target.timeoutMs)
      .catch((err: unknown) => {
        if (signal.aborted) return undefined;
        throw err;
      })
      .finally(() => clearTimeout(timer));
    if (!res) return void signal.removeEventListener('abort', cancel);
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      let message = text.slice(0, 300);
      let code = 'http_error';
      try {
        const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
        message = e?.message ?? message;
        code = e?.code ?? code;
      } catch {
        /* not JSON: keep the text */
      }
      throw new ServerError(res.status, code, message, [], url);
    }
    const parser = createParser({ onEvent: (e) => onEvent(e.event ?? 'message', e.data) });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    const stop = () => void reader.cancel().catch(() => {});
    signal.addEventListener('abort', stop, { once: true });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      if (signal.aborted) return;
      // The stream broke mid-way (server restarted, connection reset): the caller decides.
      return void err;
    } finally {
      signal.removeEventListener('abort', stop);
      signal.removeEventListener('abort', cancel);
    }
  }
}
