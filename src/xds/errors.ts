// The one error type of src/xds that reaches clients: a request that ends its stream (or
// answers its Fetch) with a gRPC status.
import type { status as GrpcStatus } from '@grpc/grpc-js';

export class ProtocolError extends Error {
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message);
  }
}
