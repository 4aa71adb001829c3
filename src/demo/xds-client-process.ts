// A proxyless gRPC client process (@grpc/grpc-js-xds) driven over IPC by its parent: the
// demo's fleet and the end-to-end tests' clients. The xDS bootstrap is per process, so each
// simulated node is its own process; the parent sets GRPC_XDS_BOOTSTRAP_CONFIG.
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { WHO_METHOD } from './backend.js';

export interface CallRequest {
  id: number;
  op: 'call';
  target: string;
  count: number;
  metadata?: Record<string, string>;
  deadlineMs?: number;
}

export interface CallResult {
  id: number;
  /** Answers by version name. */
  versions: Record<string, number>;
  /** Failures by gRPC status name. */
  errors: Record<string, number>;
  lastError?: string;
}

register();
const clients = new Map<string, grpc.Client>();
const identity = (b: Buffer) => b;

function clientFor(target: string): grpc.Client {
  let c = clients.get(target);
  if (!c) clients.set(target, (c = new grpc.Client(`xds:///${target}`, grpc.credentials.createInsecure())));
  return c;
}

function callOnce(req: CallRequest): Promise<{ version?: string; error?: grpc.ServiceError }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(req.metadata ?? {})) md.set(k, v);
  return new Promise((resolve) =>
    clientFor(req.target).makeUnaryRequest(
      WHO_METHOD,
      identity,
      identity,
      Buffer.alloc(0),
      md,
      { deadline: Date.now() + (req.deadlineMs ?? 2000) },
      (error, value) => resolve(error ? { error } : { version: value!.toString() }),
    ),
  );
}

async function handle(req: CallRequest): Promise<CallResult> {
  const result: CallResult = { id: req.id, versions: {}, errors: {} };
  for (let i = 0; i < req.count; i++) {
    const { version, error } = await callOnce(req);
    if (version !== undefined) result.versions[version] = (result.versions[version] ?? 0) + 1;
    else {
      const name = grpc.status[error!.code] ?? String(error!.code);
      result.errors[name] = (result.errors[name] ?? 0) + 1;
      result.lastError = error!.details || error!.message;
    }
  }
  return result;
}

process.on('message', (msg: CallRequest) => {
  if (msg.op === 'call') void handle(msg).then((r) => process.send!(r));
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
