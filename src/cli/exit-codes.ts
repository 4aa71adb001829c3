// Exit codes scripts can rely on (docs/cli.md, and `sluice --help`).
export const EXIT = {
  ok: 0,
  /** Bad command line or an unusable file; nothing was sent. */
  usage: 1,
  /** The server answered 4xx/5xx (or apply found a conflicting active rollout). */
  server: 2,
  /** rollback --wait: the fleet did not acknowledge within the timeout. */
  notAcknowledged: 3,
  /** No answer from the server: refused, DNS, TLS, timeout. */
  unreachable: 4,
  /** rollout status --watch: the rollout ended RolledBack. */
  rolledBack: 5,
  /** Ctrl-C. */
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0    success (rollout status --watch: the rollout was promoted)
  1    usage error or unusable file (nothing was sent)
  2    the server refused: 4xx/5xx, its message and fields printed (apply: a
       different rollout is active for the service)
  3    rollback --wait: not every node acknowledged the rollback in time
  4    server unreachable: connection refused, DNS, TLS or timeout (URL and cause printed)
  5    rollout status --watch: the rollout was rolled back
  130  interrupted (Ctrl-C)`;
