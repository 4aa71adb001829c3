// Which replica schedules: the one that holds the etcd election (`election/scheduler/<lease>`,
// the etcd3 client's Election, as in etcd's Go client). Its key lives under a lease the client
// keeps alive; when the leader dies the lease expires after its TTL and the next candidate in
// line is elected. Every commit the leader's scheduler makes expects its election key at the
// revision it was elected with (the fence): a leader that lost its lease without noticing yet
// (a partition) cannot commit anything, so two schedulers never both advance a rollout.
import { EventEmitter } from 'node:events';
import type { Campaign, ElectionObserver } from 'etcd3';
import type { Logger } from 'pino';
import type { EtcdStore } from '../store/etcd-store.js';
import type { Expectations } from '../store/store.js';

export interface Leadership extends EventEmitter<{ elected: []; lost: [] }> {
  readonly isLeader: boolean;
  /** The replica id of the current leader, as last observed (undefined: none, or unknown). */
  readonly leader: string | undefined;
  /** Expectations every scheduler commit carries; undefined when this replica is not the leader. */
  fence(): Expectations | undefined;
  start(): void;
  /** Resigns (another replica takes over at once). */
  close(): Promise<void>;
}

/** One replica alone (file store): always the leader, nothing to fence. */
export class SoleLeadership extends EventEmitter<{ elected: []; lost: [] }> implements Leadership {
  readonly isLeader = true;
  constructor(readonly leader: string) {
    super();
  }
  fence(): Expectations {
    return {};
  }
  start(): void {
    this.emit('elected');
  }
  async close(): Promise<void> {}
}

export interface EtcdLeadershipOptions {
  store: EtcdStore;
  /** This replica's id (campaigned as the election's value). */
  id: string;
  /** Lease TTL in seconds: how long a dead leader keeps the schedule waiting. */
  ttlSeconds: number;
  log: Logger;
}

const ELECTION = 'scheduler';
const RECAMPAIGN_MS = 1000;
const WARN_EVERY_MS = 30_000;

export class EtcdLeadership extends EventEmitter<{ elected: []; lost: [] }> implements Leadership {
  private campaign?: Campaign;
  private observer?: ElectionObserver;
  private fenceExpect?: Expectations;
  private observed?: string;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private warnedAt = 0;

  constructor(private readonly opts: EtcdLeadershipOptions) {
    super();
  }

  get isLeader(): boolean {
    return this.fenceExpect !== undefined;
  }

  get leader(): string | undefined {
    return this.isLeader ? this.opts.id : this.observed;
  }

  fence(): Expectations | undefined {
    return this.fenceExpect;
  }

  start(): void {
    this.run();
    void this.observe();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const was = this.isLeader;
    this.fenceExpect = undefined;
    if (was) this.emit('lost');
    await Promise.all([
      this.campaign?.resign().catch(() => undefined),
      this.observer?.cancel().catch(() => undefined),
    ]);
  }

  private run(): void {
    if (this.closed) return;
    const { store, id, ttlSeconds, log } = this.opts;
    const campaign = store.namespace.election(ELECTION, ttlSeconds).campaign(JSON.stringify({ id }));
    this.campaign = campaign;
    campaign.on('elected', () => {
      void this.elected(campaign).catch((err: Error) => {
        log.warn({ err: err.message }, 'elected, but could not read the election key; campaigning again');
        this.fail(campaign);
      });
    });
    campaign.on('error', (err) => {
      // Once per outage at warn level: it is retried every second.
      const quiet = !this.isLeader && Date.now() - this.warnedAt < WARN_EVERY_MS;
      if (!quiet) this.warnedAt = Date.now();
      log[quiet ? 'debug' : 'warn']({ err: err.message, wasLeader: this.isLeader }, 'leader election: the campaign failed (lease lost or etcd unreachable); campaigning again');
      this.fail(campaign);
    });
  }

  private async elected(campaign: Campaign): Promise<void> {
    const full = await campaign.getCampaignKey();
    const key = full.slice(this.opts.store.prefix.length);
    const res = await this.opts.store.namespace.get(key).exec();
    const kv = res.kvs[0];
    if (!kv || this.campaign !== campaign || this.closed) throw new Error('the election key is gone');
    this.fenceExpect = { [key]: Number(kv.mod_revision) };
    this.opts.log.info({ replica: this.opts.id, key }, 'elected leader: this replica schedules rollouts');
    this.emit('elected');
  }

  private fail(campaign: Campaign): void {
    if (this.campaign !== campaign) return;
    this.campaign = undefined;
    const was = this.isLeader;
    this.fenceExpect = undefined;
    if (was) this.emit('lost');
    void campaign.resign().catch(() => undefined);
    if (!this.closed) {
      this.timer = setTimeout(() => this.run(), RECAMPAIGN_MS);
      this.timer.unref();
    }
  }

  /** Follows who the leader is (for the status and fleet views). */
  private async observe(): Promise<void> {
    if (this.closed) return;
    try {
      const observer = await this.opts.store.namespace.election(ELECTION, this.opts.ttlSeconds).observe();
      this.observer = observer;
      const set = (value: string | undefined) => {
        try {
          this.observed = value ? (JSON.parse(value) as { id?: string }).id : undefined;
        } catch {
          this.observed = undefined;
        }
      };
      set(observer.leader());
      observer.on('change', set);
      observer.on('error', () => {
        this.observed = undefined;
        setTimeout(() => void this.observe(), RECAMPAIGN_MS).unref();
      });
    } catch {
      setTimeout(() => void this.observe(), RECAMPAIGN_MS).unref();
    }
  }
}
