// A tiny gRPC backend that answers which version it is: the demo's services and the
// end-to-end tests' targets. No .proto: the method (de)serializes raw bytes.
import * as grpc from '@grpc/grpc-js';

export const WHO_METHOD = '/sluice.demo.Echo/Who';

export interface BackendOptions {
  version: string;
  host?: string;
  port?: number;
  /** Share of calls (0..1) answered with UNAVAILABLE, to show a bad canary. */
  errorRate?: number;
  /** Added latency per call. */
  latencyMs?: number;
}

export interface Backend {
  port: number;
  version: string;
  /** Changes behaviour while running (error rate, latency). */
  configure(opts: Partial<Pick<BackendOptions, 'errorRate' | 'latencyMs'>>): void;
  stop(): Promise<void>;
}

const identity = (b: Buffer) => b;

export async function startBackend(opts: BackendOptions): Promise<Backend> {
  let errorRate = opts.errorRate ?? 0;
  let latencyMs = opts.latencyMs ?? 0;
  const server = new grpc.Server();
  server.addService(
    {
      Who: {
        path: WHO_METHOD,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Who: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const answer = () =>
          Math.random() < errorRate
            ? cb({ code: grpc.status.UNAVAILABLE, details: `${opts.version} failed (injected)` })
            : cb(null, Buffer.from(opts.version));
        if (latencyMs > 0) setTimeout(answer, latencyMs);
        else answer();
      },
    },
  );
  const host = opts.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    version: opts.version,
    configure(next) {
      if (next.errorRate !== undefined) errorRate = next.errorRate;
      if (next.latencyMs !== undefined) latencyMs = next.latencyMs;
    },
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
