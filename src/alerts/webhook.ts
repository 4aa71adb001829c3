// Webhooks on rollout transitions: one POST per notable history entry, as JSON or in the shape
// Slack's incoming webhooks take ({text}). Fire and forget: the controller has already stored
// and pushed the change when it tells us, delivery retries with exponential back-off in the
// background, and a dead endpoint costs a bounded number of pending deliveries, nothing else.
// With a secret, every attempt is signed (signatureHeaders) so the receiver can check that
// Sluice sent it and that it is recent.
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { HistoryEntry, RolloutState } from '../model/rollout.js';
import { isActive } from '../rollout/machine.js';

export type WebhookFormat = 'json' | 'slack';

export interface WebhookOptions {
  url: string;
  format: WebhookFormat;
  log: Logger;
  /** HMAC-SHA256 key for X-Sluice-Signature (never logged). */
  secret?: string;
  /** Attempts per delivery (default 5). */
  attempts?: number;
  /** First retry delay; doubles each time, with jitter (default 500 ms). */
  backoffMs?: number;
  timeoutMs?: number;
  /** Deliveries in flight or waiting to retry; beyond this new ones are dropped (default 100). */
  maxPending?: number;
}

/** History events worth telling people about; steps completing and ACKs are routine. */
const NOTIFY = new Set([
  'Created',
  'WeightSet',
  'Paused',
  'PausedByUser',
  'PausedByAnalysis',
  'Resumed',
  'AnalysisFailed',
  'AnalysisInconclusive',
  'MirrorSet',
  'MirrorStopped',
  'Promoted',
  'RolledBack',
]);

export interface WebhookEvent {
  type: string;
  service: string;
  rollout: string;
  phase: RolloutState['phase'];
  stable: string;
  canary: string;
  weights: Record<string, number>;
  at: string;
  by: string;
  reason: string;
  step?: number;
}

export class WebhookNotifier {
  /** History length already notified, per rollout id. */
  private readonly seen = new Map<string, number>();
  private pending = 0;
  private closed = false;

  /** `known`: the rollouts loaded at start, whose history was told before a restart. */
  constructor(
    private readonly opts: WebhookOptions,
    known: readonly RolloutState[] = [],
  ) {
    for (const r of known) if (isActive(r)) this.seen.set(r.id, r.history.length);
  }

  /** For the controller's 'change' event: sends the new notable history entries. */
  onChange(state: RolloutState, notify = true): void {
    const from = this.seen.get(state.id) ?? 0;
    // A finished rollout changes no more.
    if (isActive(state)) this.seen.set(state.id, state.history.length);
    else this.seen.delete(state.id);
    for (const h of state.history.slice(from)) if (notify && NOTIFY.has(h.event)) this.send(toEvent(state, h));
  }

  close(): void {
    this.closed = true;
  }

  private send(event: WebhookEvent): void {
    if (this.pending >= (this.opts.maxPending ?? 100)) {
      this.opts.log.warn({ event: event.type, service: event.service }, 'webhook backlog full; dropping notification');
      return;
    }
    this.pending++;
    const body = JSON.stringify(this.opts.format === 'slack' ? { text: slackText(event) } : event);
    void this.deliver(body).finally(() => this.pending--);
  }

  private async deliver(body: string): Promise<void> {
    const attempts = this.opts.attempts ?? 5;
    const backoff = this.opts.backoffMs ?? 500;
    for (let i = 1; ; i++) {
      let problem: string;
      let retry = true;
      try {
        const res = await fetch(this.opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.opts.secret ? signatureHeaders(this.opts.secret, body) : {}) },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        problem = `HTTP ${res.status}`;
        // Other client errors will not get better by asking again.
        retry = res.status >= 500 || res.status === 429 || res.status === 408;
      } catch (err) {
        problem = (err as Error).message;
      }
      if (!retry || i >= attempts || this.closed) {
        // Only the origin: a webhook URL's path is often its credential (Slack's are).
        this.opts.log.warn({ endpoint: new URL(this.opts.url).origin, attempts: i, problem }, 'webhook delivery failed');
        return;
      }
      const delay = backoff * 2 ** (i - 1) * (0.75 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, delay).unref());
    }
  }
}

/**
 * X-Sluice-Timestamp: Unix seconds at this attempt; X-Sluice-Signature: "sha256=" and the hex
 * HMAC-SHA256 of "<timestamp>.<body>". Signing the time lets receivers refuse replays of old
 * deliveries; each retry is signed afresh.
 */
export function signatureHeaders(secret: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return { 'x-sluice-timestamp': timestamp, 'x-sluice-signature': `sha256=${mac}` };
}

function toEvent(s: RolloutState, h: HistoryEntry): WebhookEvent {
  return {
    type: h.event,
    service: s.service,
    rollout: s.id,
    phase: s.phase,
    stable: s.stable,
    canary: s.canary,
    weights: h.weights,
    at: h.at,
    by: h.by,
    reason: h.reason,
    ...(h.step === undefined ? {} : { step: h.step }),
  };
}

const ICON: Record<string, string> = { RolledBack: ':rotating_light:', AnalysisFailed: ':warning:', PausedByAnalysis: ':pause_button:', AnalysisInconclusive: ':grey_question:', Promoted: ':white_check_mark:' };

function slackText(e: WebhookEvent): string {
  const weights = Object.entries(e.weights).map(([v, w]) => `${v} ${w}%`).join(', ');
  return `${ICON[e.type] ?? ':arrows_counterclockwise:'} *${e.service}* ${e.type} (${e.canary} over ${e.stable}; ${weights}) by ${e.by}: ${e.reason}`;
}
