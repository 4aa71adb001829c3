// The fleet, per owner: which streams hold, were sent, select or are about to ask for resources
// carrying an owner, and whether they hold its current fragment. An owner → streams index (fed
// by the streams themselves) and a node → streams index; an ACK or NACK touches only the waits
// of owners its stream counts for. Never a scan over every stream.
import type { OwnerStanding, XdsStream } from './stream.js';
import type { XdsPeer } from './peer.js';

export type OwnerState = 'acked' | 'pending' | 'rejected' | 'disconnected';

export interface StreamOwnerStatus {
  node: string;
  stream: number;
  /** The cache group the stream is served from. */
  group: string;
  state: OwnerState;
  /** awaitOwner: milliseconds from the start of the wait until the stream reached its state
   *  (acked or rejected); null while pending, when disconnected, and in ownerStatus. */
  ms: number | null;
  /** The NACK's error_detail message, when rejected. */
  message?: string;
}

export interface OwnerStatus {
  owner: string;
  /** Sorted by node id, then stream id. */
  streams: StreamOwnerStatus[];
  counts: Record<OwnerState, number>;
  /** Distinct node ids with a connected stream in `streams`. */
  nodes: number;
  /** Distinct node ids whose every connected stream in `streams` is acked. */
  ackedNodes: number;
}

export interface OwnerWaitResult extends OwnerStatus {
  /** False when the wait settled: no stream pending and at least minNodes nodes acked. */
  timedOut: boolean;
}

export interface AwaitOwnerOptions {
  timeoutMs: number;
  /** Hold until this many distinct nodes acked (default 0: settle as soon as none is pending,
   *  at once when no stream counts for the owner). */
  minNodes?: number;
}

/** Streams a starting wait looks at per turn of the event loop. */
const SCAN_SLICE = 1000;

/** Per-node counts within one report, so ackedNodes needs no pass over the streams. */
class NodeTally {
  private readonly byNode = new Map<string, { connected: number; acked: number }>();
  nodes = 0;
  ackedNodes = 0;

  /** Moves a stream of `node` from state `from` to `to` (undefined: not counted). */
  move(node: string, from: OwnerState | undefined, to: OwnerState | undefined): void {
    if (from === to) return;
    let n = this.byNode.get(node);
    if (!n) this.byNode.set(node, (n = { connected: 0, acked: 0 }));
    const wasAcked = n.connected > 0 && n.acked === n.connected;
    const wasPresent = n.connected > 0;
    if (from !== undefined && from !== 'disconnected') n.connected--;
    if (from === 'acked') n.acked--;
    if (to !== undefined && to !== 'disconnected') n.connected++;
    if (to === 'acked') n.acked++;
    const isAcked = n.connected > 0 && n.acked === n.connected;
    const isPresent = n.connected > 0;
    this.nodes += Number(isPresent) - Number(wasPresent);
    this.ackedNodes += Number(isAcked) - Number(wasAcked);
    if (!isPresent) this.byNode.delete(node);
  }
}

function emptyCounts(): Record<OwnerState, number> {
  return { acked: 0, pending: 0, rejected: 0, disconnected: 0 };
}

function sortStreams(list: StreamOwnerStatus[]): StreamOwnerStatus[] {
  return list.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.stream - b.stream));
}

/** One running awaitOwner. Counts are kept as states change: settling is O(1) per event. */
class OwnerWait {
  private readonly entries = new Map<XdsStream, StreamOwnerStatus>();
  private readonly counts = emptyCounts();
  private readonly tally = new NodeTally();
  private readonly started = performance.now();
  private done = false;
  /** False until every stream that counted for the owner when the wait began was looked at. */
  scanned = false;

  constructor(
    readonly owner: string,
    private readonly minNodes: number,
    private readonly finish: (result: OwnerWaitResult) => void,
  ) {}

  /** (Re-)evaluates one stream; returns its standing (`none`: it no longer concerns the owner). */
  consider(s: XdsStream): OwnerStanding['state'] {
    if (this.done) return 'none';
    const { state, message } = s.ownerStanding(this.owner);
    const prev = this.entries.get(s);
    if (state === 'none') {
      // It counted during the wait and now holds nothing of the owner (it ACKed the owner's
      // removal, or dropped its subscription): it holds the owner's current state.
      if (prev && prev.state !== 'acked' && prev.state !== 'disconnected')
        this.set(s, prev, { node: prev.node, stream: prev.stream, group: prev.group, state: 'acked', ms: Math.round(performance.now() - this.started) });
      return state;
    }
    if (prev?.state === state && prev.message === message) return state;
    const ms = state === 'pending' ? null : Math.round(performance.now() - this.started);
    this.set(s, prev, { node: s.node!.id, stream: s.id, group: s.group, state, ms, ...(message !== undefined ? { message } : {}) });
    return state;
  }

  gone(s: XdsStream): void {
    const prev = this.entries.get(s);
    if (!this.done && prev && prev.state !== 'disconnected')
      this.set(s, prev, { node: prev.node, stream: prev.stream, group: prev.group, state: 'disconnected', ms: null });
  }

  private set(s: XdsStream, prev: StreamOwnerStatus | undefined, next: StreamOwnerStatus | undefined): void {
    if (prev) this.counts[prev.state]--;
    if (next) {
      this.counts[next.state]++;
      this.entries.set(s, next);
    } else this.entries.delete(s);
    this.tally.move(prev?.node ?? next!.node, prev?.state, next?.state);
  }

  streams(): Iterable<XdsStream> {
    return this.entries.keys();
  }

  /** Ends the wait if it is settled (or `timedOut`). */
  check(timedOut = false): void {
    if (this.done) return;
    if (!timedOut && (!this.scanned || this.counts.pending > 0 || this.tally.ackedNodes < this.minNodes)) return;
    this.done = true;
    this.finish({
      owner: this.owner,
      streams: sortStreams([...this.entries.values()]),
      counts: { ...this.counts },
      nodes: this.tally.nodes,
      ackedNodes: this.tally.ackedNodes,
      timedOut,
    });
  }
}

export class Fleet {
  /** owner → streams that may count for it (XdsStream.owners, mirrored). */
  private readonly byOwner = new Map<string, Set<XdsStream>>();
  /** node id → its attached stream, or streams when it has several (most nodes have one). */
  private readonly byNode = new Map<string, XdsStream | Set<XdsStream>>();
  private readonly waits = new Map<string, Set<OwnerWait>>();

  attached(stream: XdsStream): void {
    const id = stream.node!.id;
    const had = this.byNode.get(id);
    if (!had) this.byNode.set(id, stream);
    else if (had instanceof Set) had.add(stream);
    else this.byNode.set(id, new Set([had, stream]));
  }

  joined(stream: XdsStream, owner: string): void {
    let set = this.byOwner.get(owner);
    if (!set) this.byOwner.set(owner, (set = new Set()));
    set.add(stream);
    const waits = this.waits.get(owner);
    if (waits) for (const w of [...waits]) this.evaluate(w, stream);
  }

  /** An ACK or NACK of `stream`: re-evaluates it in the waits of the owners it counts for. */
  answered(stream: XdsStream): void {
    if (this.waits.size === 0) return;
    if (stream.owners.size <= this.waits.size) {
      for (const o of stream.owners) {
        const waits = this.waits.get(o);
        if (waits) for (const w of [...waits]) this.evaluate(w, stream);
      }
    } else for (const [o, waits] of this.waits) if (stream.owners.has(o)) for (const w of [...waits]) this.evaluate(w, stream);
  }

  /** The cache changed these owners' resources: their waiting streams may have moved. */
  cacheChanged(owners: ReadonlySet<string>): void {
    if (this.waits.size === 0) return;
    for (const o of owners) {
      const waits = this.waits.get(o);
      if (!waits) continue;
      for (const w of [...waits]) {
        for (const s of [...w.streams()]) if (!s.closed) w.consider(s);
        w.check();
      }
    }
  }

  detached(stream: XdsStream): void {
    for (const o of stream.owners) {
      const set = this.byOwner.get(o);
      if (set?.delete(stream) && set.size === 0) this.byOwner.delete(o);
      const waits = this.waits.get(o);
      if (waits)
        for (const w of [...waits]) {
          w.gone(stream);
          w.check();
        }
    }
    const id = stream.node?.id;
    const had = id === undefined ? undefined : this.byNode.get(id);
    if (had === stream) this.byNode.delete(id!);
    else if (had instanceof Set && had.delete(stream) && had.size === 1) this.byNode.set(id!, had.values().next().value!);
  }

  /** Where every stream that counts for `owner` stands now. */
  status(owner: string): OwnerStatus {
    const counts = emptyCounts();
    const tally = new NodeTally();
    const streams: StreamOwnerStatus[] = [];
    for (const s of this.members(owner)) {
      const { state, message } = s.ownerStanding(owner);
      if (state === 'none') {
        this.leave(s, owner);
        continue;
      }
      counts[state]++;
      tally.move(s.node!.id, undefined, state);
      streams.push({ node: s.node!.id, stream: s.id, group: s.group, state, ms: null, ...(message !== undefined ? { message } : {}) });
    }
    return { owner, streams: sortStreams(streams), counts, nodes: tally.nodes, ackedNodes: tally.ackedNodes };
  }

  /**
   * Resolves once no stream that counts for `owner` is pending and at least `minNodes` distinct
   * nodes acked, or when the timeout passes. Streams that come to count for the owner while it
   * runs join it; streams that leave the owner drop out; disconnected ones are reported so.
   */
  awaitOwner(owner: string, opts: AwaitOwnerOptions): Promise<OwnerWaitResult> {
    const minNodes = opts.minNodes ?? 0;
    if (!Number.isInteger(minNodes) || minNodes < 0) throw new Error(`minNodes must be a non-negative integer, got ${opts.minNodes}`);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wait = new OwnerWait(owner, minNodes, (result) => {
        if (timer) clearTimeout(timer);
        const set = this.waits.get(owner);
        if (set?.delete(wait) && set.size === 0) this.waits.delete(owner);
        resolve(result);
      });
      let set = this.waits.get(owner);
      if (!set) this.waits.set(owner, (set = new Set()));
      set.add(wait);
      timer = setTimeout(() => wait.check(true), opts.timeoutMs);
      // A wait usually starts right after a change was handed to every stream, before HTTP/2
      // has sent it: the first look at 10,000 streams goes in slices, so the writes are not held
      // back behind it. Streams that answer meanwhile are looked at as they answer.
      const members = this.members(owner);
      const scan = (from: number) => {
        const end = Math.min(members.length, from + SCAN_SLICE);
        for (let i = from; i < end; i++) {
          const s = members[i]!;
          if (!s.closed && wait.consider(s) === 'none') this.leave(s, owner);
        }
        if (end < members.length) return void setImmediate(scan, end);
        wait.scanned = true;
        wait.check();
      };
      if (members.length <= SCAN_SLICE) scan(0);
      else setImmediate(scan, 0);
    });
  }

  /** Whether a live stream of `nodeId` was sent (or holds) `name` of `typeUrl`. */
  wasSent(nodeId: string, typeUrl: string, name: string, from?: (peer: XdsPeer) => boolean): boolean {
    const had = this.byNode.get(nodeId);
    if (!had) return false;
    for (const s of had instanceof Set ? had : [had]) {
      if (from && !from(s.peer)) continue;
      const st = s.types.get(typeUrl);
      if (st && (st.sent.has(name) || st.acked.has(name))) return true;
    }
    return false;
  }

  /** Sizes of the indexes (entries per owner and node, running waits): they follow the streams. */
  stats(): { ownerEntries: number; nodes: number; waits: number } {
    let ownerEntries = 0;
    for (const set of this.byOwner.values()) ownerEntries += set.size;
    let waits = 0;
    for (const set of this.waits.values()) waits += set.size;
    return { ownerEntries, nodes: this.byNode.size, waits };
  }

  private members(owner: string): XdsStream[] {
    return [...(this.byOwner.get(owner) ?? [])];
  }

  private evaluate(w: OwnerWait, s: XdsStream): void {
    w.consider(s);
    w.check();
  }

  /** The stream no longer concerns the owner: out of the index until it joins again. */
  private leave(s: XdsStream, owner: string): void {
    s.leave(owner);
    const set = this.byOwner.get(owner);
    if (set?.delete(s) && set.size === 0) this.byOwner.delete(owner);
  }
}
