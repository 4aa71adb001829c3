// Turns desired routing into cache contents for both client flavours. Bursts of changes are
// coalesced; an urgent change (a rollback) is published at once.
import type { Logger } from 'pino';
import type { ResourceCache } from '../xds/cache.js';
import type { EnvoyListenerOptions } from '../translate/listeners.js';
import type { Flavour, Routing } from '../translate/routing.js';
import { Translator } from '../translate/translate.js';
import type { XdsNode } from '../xds/node.js';

/** Which cache group serves a node: Envoy gets socket listeners, everything else API listeners. */
export function flavourOf(node: XdsNode): Flavour {
  const declared = node.metadata['sluice.flavour'];
  if (declared === 'envoy' || declared === 'grpc') return declared;
  return node.userAgentName.toLowerCase() === 'envoy' ? 'envoy' : 'grpc';
}

export interface PublisherOptions {
  cache: ResourceCache;
  log: Logger;
  envoyListener: EnvoyListenerOptions;
  /** The current desired routing of every service. */
  routings: () => Routing[];
  debounceMs?: number;
}

export class Publisher {
  private timer?: NodeJS.Timeout;
  private waiters: (() => void)[] = [];
  private readonly debounceMs: number;
  private readonly translator: Translator;

  constructor(private readonly opts: PublisherOptions) {
    this.debounceMs = opts.debounceMs ?? 20;
    this.translator = new Translator(opts.envoyListener);
  }

  /** Publishes soon (coalescing bursts), or now when urgent; resolves once the cache has it. */
  schedule(urgent = false): Promise<void> {
    const published = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (urgent) this.publishNow();
    else
      this.timer ??= setTimeout(() => {
        try {
          this.publishNow();
        } catch (err) {
          this.opts.log.error({ err }, 'publish failed');
        }
      }, this.debounceMs);
    return published;
  }

  publishNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    try {
      const routings = this.opts.routings();
      const { cache } = this.opts;
      const grpcChanged = cache.set('grpc', this.translator.grpc(routings));
      const envoyChanged = cache.set('envoy', this.translator.envoy(routings));
      this.translator.forgetAllBut(routings);
      if (grpcChanged.size || envoyChanged.size)
        this.opts.log.debug({ services: routings.length, grpc: [...grpcChanged], envoy: [...envoyChanged] }, 'published');
    } finally {
      for (const w of waiters) w();
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters) w();
    this.waiters = [];
  }
}
