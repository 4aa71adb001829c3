// A tiny HTTP/1.1 backend that answers which version it is: the services behind Envoy in the
// docker-compose demo. Every GET answers `{"version":"v1"}` with an `x-version` header, so a
// load generator can count the split from headers alone, errors included.
import http from 'node:http';

export interface HttpBackendOptions {
  version: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Share of requests (0..1) answered 503, to show a bad canary being rolled back. */
  errorRate?: number;
  /** Added latency per request. */
  latencyMs?: number;
}

export interface HttpBackend {
  port: number;
  stop(): Promise<void>;
}

export async function startHttpBackend(opts: HttpBackendOptions): Promise<HttpBackend> {
  const errorRate = opts.errorRate ?? 0;
  const latencyMs = opts.latencyMs ?? 0;
  if (!(errorRate >= 0 && errorRate <= 1)) throw new Error(`errorRate must be between 0 and 1, got ${errorRate}`);
  if (!(latencyMs >= 0)) throw new Error(`latencyMs must be 0 or more, got ${latencyMs}`);

  const server = http.createServer((req, res) => {
    const answer = () => {
      // Failed answers carry the version too: the split of errors per version is the point.
      res.setHeader('x-version', opts.version);
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { version: opts.version, error: 'only GET' });
      if (Math.random() < errorRate) return send(res, 503, { version: opts.version, error: 'injected failure' });
      send(res, 200, { version: opts.version });
    };
    if (latencyMs > 0) setTimeout(answer, latencyMs);
    else answer();
  });
  // Node closes idle keep-alive connections after 5 s; Envoy reuses upstream connections far
  // longer and may send a request on one that is being closed at that instant (a 503 "UC"
  // without retry). Keeping idle connections longer makes that race rare in the demo.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 80_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
