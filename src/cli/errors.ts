// Errors the CLI turns into exit codes (main.ts; the codes: exit-codes.ts).

/** A mistake on the command line found after parsing (exit code 1). */
export class UsageError extends Error {}

/** A file the CLI cannot use; nothing was sent (exit code 1). */
export class ManifestError extends Error {}

/** A rollout file that conflicts with the rollout running on the server (exit code 2). */
export class ApplyConflictError extends Error {}

/** rollback --wait answered, but not every node acknowledged (exit code 3). */
export class NotAcknowledgedError extends Error {}
