// The `--xds-policy` file, kept current: read at start (a bad file stops the start), re-read when it
// changes (a bad file keeps the last good policy, and the log says why).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { XdsPolicy } from './policy.js';
import { parsePolicy } from './policy.js';
import type { WatchOptions } from './watch.js';
import { readSmallFile, watchFiles } from './watch.js';

const MAX_FILE_BYTES = 1024 * 1024;

export class PolicyFile extends EventEmitter<{ change: [policy: XdsPolicy] }> {
  private unwatch?: () => void;

  private constructor(
    readonly file: string,
    private policy: XdsPolicy,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Reads the file (throws, naming the file and the fault, when it is missing or invalid) and watches it. */
  static open(file: string, log: Logger, watch?: WatchOptions): PolicyFile {
    let policy: XdsPolicy;
    try {
      policy = parsePolicy(readSmallFile(file, MAX_FILE_BYTES).toString('utf8'));
    } catch (err) {
      throw new Error(`--xds-policy ${file}: ${(err as Error).message}`);
    }
    const pf = new PolicyFile(file, policy, log);
    pf.unwatch = watchFiles([file], () => pf.reload(), watch);
    log.info({ file, rules: policy.rules.length }, 'xDS policy loaded');
    return pf;
  }

  get current(): XdsPolicy {
    return this.policy;
  }

  /** Re-reads the file; returns whether the new policy was taken. */
  reload(): boolean {
    try {
      this.policy = parsePolicy(readSmallFile(this.file, MAX_FILE_BYTES).toString('utf8'));
    } catch (err) {
      this.log.error({ file: this.file, problem: (err as Error).message }, 'xDS policy not reloaded: keeping the last good policy');
      return false;
    }
    this.log.info({ file: this.file, rules: this.policy.rules.length }, 'xDS policy reloaded');
    this.emit('change', this.policy);
    return true;
  }

  close(): void {
    this.unwatch?.();
  }
}
