import { spawnSync } from 'node:child_process';
import { PYTHON } from '../../src/demo/xds-client.js';

let cached: boolean | undefined;

/** Whether Debian's python3-grpcio (gRPC C-core) can be imported by /usr/bin/python3. */
export function hasPythonGrpc(): boolean {
  cached ??= spawnSync(PYTHON, ['-c', 'import grpc'], { stdio: 'ignore' }).status === 0;
  return cached;
}
