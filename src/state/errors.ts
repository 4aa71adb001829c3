// Why a change of the desired state was refused, in terms the API maps to HTTP codes.

/** The change conflicts with the current configuration (HTTP 409); `field` names the culprit. */
export class ConflictError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {}

/** A value that is valid on its own but not for this service (HTTP 400). */
export class InvalidFieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The store cannot be written: nothing changed (HTTP 503). */
export class NotWritableError extends Error {
  constructor(readonly cause: Error) {
    super(`the change was not applied: the store cannot be written (${cause.message}); try again once it is repaired`);
  }
}

/**
 * A rollback reached the fleet but could not be stored: the state in memory (and on every node)
 * is rolled back, persistence is retried until it succeeds, and until then a restart would
 * bring back what was stored before.
 */
export class NotPersistedError extends Error {
  constructor(
    readonly value: unknown,
    readonly cause: Error,
  ) {
    super(`rolled back and pushed to the fleet, but not persisted: the store cannot be written (${cause.message}); retrying until it can`);
  }
}
