// Serialises work per key: a job waits for every earlier job that shares a key with it, and
// jobs on disjoint keys run concurrently. A job registers all its keys at once, before it
// waits, so two jobs can never wait for each other.
export class KeyLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: Iterable<string>, job: () => Promise<T>): Promise<T> {
    const own = [...new Set(keys)];
    const earlier = own.map((k) => this.tails.get(k)).filter((p): p is Promise<void> => !!p);
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    for (const k of own) this.tails.set(k, done);
    try {
      await Promise.all(earlier);
      return await job();
    } finally {
      release();
      for (const k of own) if (this.tails.get(k) === done) this.tails.delete(k);
    }
  }

  /** Resolves when every job registered so far has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
