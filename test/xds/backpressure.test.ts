// Back-pressure over real gRPC streams: a client that stops reading fills HTTP/2 flow control
// and the server's write buffer; the server must defer (and coalesce) its pushes to that client
// without holding up the others, and send the latest state once the client reads again.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SotwClient, SotwResponse } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, EDS, LDS, cluster, endpoints, eventually, listener, startXds } from './fixtures.js';

const PADDING = 20_000; // bytes per cluster message: a few dozen fill the transport
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let h: Harness;
beforeEach(async () => {
  h = await startXds();
});
afterEach(async () => {
  await h.close();
});

function typeStatus(node: string, typeUrl: string) {
  const t = h.fleetNode(node)?.types[typeUrl];
  if (!t) throw new Error(`${node} has no ${typeUrl} in fleet()`);
  return t;
}

async function subscribed(c: SotwClient, typeUrl: string, names: string[] = []): Promise<SotwResponse> {
  c.subscribe(typeUrl, names);
  const r = await c.next();
  c.ack(r);
  await eventually(() => expect(typeStatus(c.node!.id!, typeUrl).ackedVersion).toBe(r.version_info));
  return r;
}

const timeoutOf = (r: SotwResponse) =>
  Number((r.resources[0]?.value as { connect_timeout?: { seconds?: string } }).connect_timeout?.seconds);

/** Takes cluster responses until the one with `seconds` arrives. */
async function upTo(c: SotwClient, seconds: number): Promise<void> {
  for (;;) {
    const r = await c.next(10_000, CDS);
    if (timeoutOf(r) === seconds) return;
  }
}

/** Types received after the (last) cluster with `seconds`, in order. */
function typesAfterCluster(c: SotwClient, seconds: number): string[] {
  const all = c.received;
  let i = all.length - 1;
  while (i >= 0 && !(all[i]!.type_url === CDS && timeoutOf(all[i]!) === seconds)) i--;
  return all.slice(i + 1).map((r) => r.type_url);
}

describe('back-pressure', () => {
  it('a client that stops reading does not hold up the others, and gets the latest state when it reads again', async () => {
    h.set({ [CDS]: [cluster('a', 1, PADDING)] });
    const slow = h.sotw({ node: { id: 'slow' } });
    const fast = h.sotw({ node: { id: 'fast' } });
    await subscribed(slow, CDS);
    await subscribed(fast, CDS);

    slow.pause();
    const last = 120;
    for (let s = 2; s <= last; s++) {
      h.set({ [CDS]: [cluster('a', s, PADDING)] });
      const r = await fast.next();
      expect(timeoutOf(r)).toBe(s);
      fast.ack(r);
    }
    // The slow client's stream is stuck well behind (otherwise this test proves nothing).
    expect(typeStatus('slow', CDS).sentVersion).not.toBe(typeStatus('fast', CDS).sentVersion);

    slow.resume();
    await upTo(slow, last);
    // Deferred pushes were coalesced: it got a prefix of versions, then directly the latest.
    const seen = slow.received.map(timeoutOf);
    expect(seen.at(-1)).toBe(last);
    expect(seen.length).toBeLessThan(last);
    await eventually(() => expect(typeStatus('slow', CDS).sentVersion).toBe(typeStatus('fast', CDS).sentVersion));
  });

  // The write that hits the high-water mark may be the cluster's own (then its forced endpoint
  // resend is deferred) or the endpoints' (then nothing is lost). Which one depends on how many
  // messages fit in the transport. Each round adds one listener push at a later step; once that
  // step falls after the transport stalled, it shifts the count by one and the cluster's write
  // is the one that blocks.
  //
  // Regression: a push deferred by back-pressure must remember that it was forced, or a
  // re-sent cluster whose write filled the buffer never gets its ClusterLoadAssignment.
  it('re-sends the endpoints of a cluster whose push hit the back-pressure limit', async () => {
    h.set({ [CDS]: [cluster('a', 1, PADDING)], [EDS]: [endpoints('a')], [LDS]: [listener('l')] });
    const c = h.sotw();
    await subscribed(c, CDS);
    await subscribed(c, EDS, ['a']);
    await subscribed(c, LDS);

    let seconds = 1;
    let port = 20_000;
    let clusterWriteBlocked = false;
    for (let round = 0; round < 12 && !clusterWriteBlocked; round++) {
      c.pause();
      for (let step = 0; step < 500; step++) {
        if (step === 4 * round) h.set({ [LDS]: [listener('l', ++port)] });
        const edsSentAt = typeStatus('node-1', EDS).sentAt;
        await sleep(2); // so that a new EDS push has a new sentAt
        h.set({ [CDS]: [cluster('a', ++seconds, PADDING)] });
        const clusterWritten = typeStatus('node-1', CDS).sentVersion === h.cache.view('g', CDS, '*').version;
        if (!clusterWritten) break; // blocked by an earlier write: try again with another count
        if (typeStatus('node-1', EDS).sentAt === edsSentAt) {
          clusterWriteBlocked = true; // the cluster went out, its endpoints were deferred
          break;
        }
      }
      c.resume();
      await upTo(c, seconds);
      if (!clusterWriteBlocked) {
        // The endpoints follow the latest cluster once the transport drained.
        await eventually(() => expect(typesAfterCluster(c, seconds)).toContain(EDS));
        c.drain();
      }
    }
    expect(clusterWriteBlocked, 'no round blocked on the cluster write').toBe(true);
    // The cluster went out; its endpoints must follow it once the client reads again.
    await eventually(() => expect(typesAfterCluster(c, seconds)).toContain(EDS), 3000);
  });
});
