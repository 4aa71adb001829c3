// The per-owner fleet interface over real gRPC streams: a stream counts for an owner only when
// it holds, was sent, selects or is about to ask for resources carrying it, and its state is
// judged on the owner's fragment (a NACK of another owner's change does not count against it).
import { afterEach, describe, expect, it } from 'vitest';
import type { DeltaClient, DeltaResponse, SotwClient, SotwResponse } from '../support/ads-client.js';
import { channel, struct } from '../support/ads-client.js';
import type { Harness } from './fixtures.js';
import { CDS, LDS, RDS, cluster, eventually, listener, route, sharedRoute, startXds } from './fixtures.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

type Client = SotwClient | DeltaClient;
type Response = SotwResponse | DeltaResponse;
const flavours = ['sotw', 'delta'] as const;

function open(flavour: (typeof flavours)[number], id: string): Client {
  return flavour === 'sotw' ? h.sotw({ node: { id } }) : h.delta({ node: { id } });
}

function ack(c: Client, r: Response): void {
  (c as { ack(r: Response): void }).ack(r);
}
function nack(c: Client, r: Response, message: string): void {
  (c as { nack(r: Response, m: string): void }).nack(r, message);
}

function typeAcked(id: string, typeUrl: string): boolean {
  const t = h.fleetNode(id)?.types[typeUrl];
  return !!t && t.ackedVersion !== null && t.ackedVersion === t.sentVersion;
}

/** Subscribes, takes the answer, ACKs it and waits until the server has the ACK. */
async function subscribed(c: Client, typeUrl: string, names: string[]): Promise<Response> {
  c.subscribe(typeUrl, names);
  const r = await c.next(5000, typeUrl);
  ack(c, r);
  await eventually(() => expect(typeAcked(c.node!.id!, typeUrl)).toBe(true));
  return r;
}

/** Listener and route per service, each owned by its service. `gen` changes both routes. */
function services(gen: number) {
  return {
    [LDS]: [listener('echo', 10000, 'echo', ['echo']), listener('other', 10001, 'other', ['other'])],
    [RDS]: [route('echo', [`echo-v${gen}`], ['echo']), route('other', [`other-v${gen}`], ['other'])],
  };
}

const states = (r: { streams: { node: string; state: string; message?: string }[] }) =>
  r.streams.map((s) => [s.node, s.state, ...(s.message ? [s.message] : [])]);

describe.each(flavours)('per-owner convergence (%s)', (flavour) => {
  it("a silent and a NACKing client of `other` hold up neither echo's wait nor its status", async () => {
    h = await startXds();
    h.set(services(1));
    const clients = { echo: open(flavour, 'echo-1'), silent: open(flavour, 'other-silent'), nacker: open(flavour, 'other-nacker') };
    await subscribed(clients.echo, LDS, ['echo']);
    await subscribed(clients.echo, RDS, ['echo']);
    for (const c of [clients.silent, clients.nacker]) {
      await subscribed(c, LDS, ['other']);
      await subscribed(c, RDS, ['other']);
    }
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['echo-1', 'acked']]);
    expect(states(h.xds.ownerStatus('other'))).toEqual([
      ['other-nacker', 'acked'],
      ['other-silent', 'acked'],
    ]);

    h.set(services(2));
    const echoWait = h.xds.awaitOwner('echo', { timeoutMs: 20_000 });
    const otherWait = h.xds.awaitOwner('other', { timeoutMs: 300 });
    ack(clients.echo, await clients.echo.next(5000, RDS));
    nack(clients.nacker, await clients.nacker.next(5000, RDS), 'route other rejected');
    await clients.silent.next(5000, RDS); // and never answered

    const echo = await echoWait;
    expect(echo.timedOut).toBe(false);
    expect(states(echo)).toEqual([['echo-1', 'acked']]);
    expect(echo).toMatchObject({ nodes: 1, ackedNodes: 1, counts: { acked: 1, pending: 0, rejected: 0, disconnected: 0 } });
    expect(echo.streams[0]!.ms).toBeGreaterThanOrEqual(0);

    const other = await otherWait;
    expect(other.timedOut).toBe(true);
    expect(states(other)).toEqual([
      ['other-nacker', 'rejected', 'route other rejected'],
      ['other-silent', 'pending'],
    ]);
    expect(other).toMatchObject({ nodes: 2, ackedNodes: 0 });
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['echo-1', 'acked']]);
  });

  it('on a shared route configuration, a NACK counts only against the owners whose current fragment it carried', async () => {
    h = await startXds();
    const routes = (echoCluster: string, otherTimeout: number) =>
      sharedRoute('sluice_http', [
        { owner: 'echo', cluster: echoCluster },
        { owner: 'other', cluster: 'other-v1', timeoutSeconds: otherTimeout },
      ]);
    h.set({ [RDS]: [routes('echo-v1', 15)] });
    const envoy = open(flavour, 'envoy-1');
    await subscribed(envoy, RDS, ['sluice_http']);
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['envoy-1', 'acked']]);

    // Only other's virtual host changes, and the Envoy rejects it: echo is still acked.
    h.set({ [RDS]: [routes('echo-v1', 99)] });
    nack(envoy, await envoy.next(5000, RDS), 'bad other');
    await eventually(() => expect(h.fleetNode('envoy-1')?.types[RDS]?.lastNack?.message).toBe('bad other'));
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['envoy-1', 'acked']]);
    expect(states(h.xds.ownerStatus('other'))).toEqual([['envoy-1', 'rejected', 'bad other']]);
    const echoWait = await h.xds.awaitOwner('echo', { timeoutMs: 20_000 });
    expect(echoWait).toMatchObject({ timedOut: false, ackedNodes: 1 });

    // Now echo changes too; the version still carries other's bad host and is rejected: the
    // NACK carried echo's current fragment, so it counts against echo as well.
    h.set({ [RDS]: [routes('echo-v2', 99)] });
    nack(envoy, await envoy.next(5000, RDS), 'still bad');
    await eventually(() => expect(h.fleetNode('envoy-1')?.types[RDS]?.lastNack?.message).toBe('still bad'));
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['envoy-1', 'rejected', 'still bad']]);

    // other's host is fixed: the Envoy accepts, both owners are acked.
    h.set({ [RDS]: [routes('echo-v2', 15)] });
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['envoy-1', 'pending']]); // offered again
    const waiting = h.xds.awaitOwner('echo', { timeoutMs: 20_000 });
    ack(envoy, await envoy.next(5000, RDS));
    expect(await waiting).toMatchObject({ timedOut: false, counts: { acked: 1 } });
    expect(states(h.xds.ownerStatus('other'))).toEqual([['envoy-1', 'acked']]);
  });

  it('a client that got the listener but has not asked for its routes is pending for the routes’ owner', async () => {
    h = await startXds();
    // The listener carries no owner: the client counts for echo through what it points at.
    h.set({ [LDS]: [listener('l', 10000, 'echo-routes')], [RDS]: [route('echo-routes', ['echo-v1'], ['echo'])] });
    const starting = open(flavour, 'starting');
    await subscribed(starting, LDS, ['l']);
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['starting', 'pending']]);
    await subscribed(starting, RDS, ['echo-routes']);
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['starting', 'acked']]);
  });
});

describe('streams that come and go', () => {
  it('minNodes holds the wait until that many distinct nodes acked; streams that join are counted', async () => {
    h = await startXds();
    h.set(services(1));
    const a1 = h.sotw({ node: { id: 'node-a' } });
    await subscribed(a1, RDS, ['echo']);

    let settled = false;
    const waiting = h.xds.awaitOwner('echo', { timeoutMs: 20_000, minNodes: 2 });
    void waiting.then(() => (settled = true));
    // A second stream of the same node is not a second node.
    const a2 = h.sotw({ node: { id: 'node-a' } });
    await subscribed(a2, RDS, ['echo']);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect(h.xds.ownerStatus('echo')).toMatchObject({ nodes: 1, ackedNodes: 1, counts: { acked: 2 } });

    const b = h.sotw({ node: { id: 'node-b' } });
    await subscribed(b, RDS, ['echo']);
    const result = await waiting;
    expect(result).toMatchObject({ timedOut: false, nodes: 2, ackedNodes: 2 });
    expect(states(result)).toEqual([
      ['node-a', 'acked'],
      ['node-a', 'acked'],
      ['node-b', 'acked'],
    ]);
  });

  it('with no stream of the owner, a wait without minNodes settles at once with zero nodes; with minNodes it waits', async () => {
    h = await startXds();
    h.set(services(1));
    const bystander = h.sotw({ node: { id: 'other-1' } });
    await subscribed(bystander, RDS, ['other']);

    // Settles long before its timeout (the test's own timeout is shorter than this one).
    const empty = await h.xds.awaitOwner('echo', { timeoutMs: 120_000 });
    expect(empty).toEqual({
      owner: 'echo',
      streams: [],
      counts: { acked: 0, pending: 0, rejected: 0, disconnected: 0 },
      nodes: 0,
      ackedNodes: 0,
      timedOut: false,
    });
    expect(await h.xds.awaitOwner('echo', { timeoutMs: 100, minNodes: 1 })).toMatchObject({ timedOut: true, nodes: 0 });

    const waiting = h.xds.awaitOwner('echo', { timeoutMs: 20_000, minNodes: 1 });
    const joiner = h.sotw({ node: { id: 'echo-late' } });
    await subscribed(joiner, RDS, ['echo']);
    expect(await waiting).toMatchObject({ timedOut: false, ackedNodes: 1, streams: [{ node: 'echo-late', state: 'acked' }] });
  });

  it('reports a stream that disconnects during the wait, and forgets it afterwards', async () => {
    h = await startXds();
    h.set(services(1));
    const leaver = h.sotw({ node: { id: 'leaver' } });
    await subscribed(leaver, RDS, ['echo']);
    h.set(services(2));
    await leaver.next();
    const waiting = h.xds.awaitOwner('echo', { timeoutMs: 20_000 });
    leaver.cancel();
    const result = await waiting;
    expect(result).toMatchObject({ timedOut: false, nodes: 0, counts: { disconnected: 1 } });
    expect(states(result)).toEqual([['leaver', 'disconnected']]);
    expect(h.xds.ownerStatus('echo').streams).toEqual([]);
  });

  it('a wait over more streams than one look takes (2,500) counts every one of them', async () => {
    h = await startXds();
    h.set({ [CDS]: [cluster('big-v1', 1, 0, ['big'])] });
    const N = 2500;
    const conns = Array.from({ length: 10 }, () => channel(h.port));
    try {
      const clients = Array.from({ length: N }, (_, i) => h.sotw({ node: { id: `big-${String(i).padStart(4, '0')}` }, channel: conns[i % conns.length] }));
      for (const c of clients) c.subscribe(CDS, ['big-v1']);
      for (const c of clients) c.ack(await c.next(20_000));
      await eventually(() => expect(h.xds.ownerStatus('big').counts.acked).toBe(N), 20_000);
      h.set({ [CDS]: [cluster('big-v1', 2, 0, ['big'])] });
      // Every stream but the last to join answers the change before the wait starts.
      const last = clients[N - 1]!;
      for (const c of clients.slice(0, -1)) c.ack(await c.next(20_000, CDS));
      await last.next(20_000, CDS);
      await eventually(() => expect(h.xds.ownerStatus('big').counts.acked).toBe(N - 1), 20_000);
      const silent = await h.xds.awaitOwner('big', { timeoutMs: 1500 });
      expect(silent).toMatchObject({ timedOut: true, nodes: N, ackedNodes: N - 1, counts: { acked: N - 1, pending: 1 } });
      expect(silent.streams.filter((s) => s.state === 'pending').map((s) => s.node)).toEqual([last.node!.id]);
      last.ack(last.received.at(-1)!);
      const settled = await h.xds.awaitOwner('big', { timeoutMs: 20_000 });
      expect(settled).toMatchObject({ timedOut: false, ackedNodes: N, counts: { acked: N, pending: 0 } });
    } finally {
      for (const c of conns) c.close();
    }
  });

  it('a stream that stops selecting the owner’s resources stops counting for it', async () => {
    h = await startXds();
    h.set(services(1));
    const c = h.sotw({ node: { id: 'mover' } });
    await subscribed(c, RDS, ['echo']);
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['mover', 'acked']]);
    const r = await subscribed(c, RDS, ['other']);
    expect(r.names).toEqual(['other']);
    expect(h.xds.ownerStatus('echo').streams).toEqual([]);
    expect(states(h.xds.ownerStatus('other'))).toEqual([['mover', 'acked']]);
  });

  it('a client holding an owner’s resource is pending until it ACKs the version without it', async () => {
    h = await startXds();
    h.set({ [CDS]: [cluster('echo-v1', 1, 0, ['echo']), cluster('other-v1', 1, 0, ['other'])] });
    const c = h.sotw({ node: { id: 'wild' } });
    await subscribed(c, CDS, []); // wildcard
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['wild', 'acked']]);
    h.set({ [CDS]: [cluster('other-v1', 1, 0, ['other'])] }); // echo deleted
    const r = await c.next();
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['wild', 'pending']]);
    const waiting = h.xds.awaitOwner('echo', { timeoutMs: 20_000 });
    ack(c, r);
    // It counted for echo during the wait and now holds nothing of it: acked.
    expect(await waiting).toMatchObject({ timedOut: false, streams: [{ node: 'wild', state: 'acked' }] });
    expect(h.xds.ownerStatus('echo').streams).toEqual([]);
  });

  it('a wildcard client joins an owner whose resources appear later', async () => {
    h = await startXds();
    h.set({ [CDS]: [cluster('other-v1', 1, 0, ['other'])] });
    const c = h.delta({ node: { id: 'wild' } });
    await subscribed(c, CDS, []);
    expect(h.xds.ownerStatus('echo').streams).toEqual([]);
    h.set({ [CDS]: [cluster('other-v1', 1, 0, ['other']), cluster('echo-v1', 1, 0, ['echo'])] });
    const r = await c.next();
    expect(states(h.xds.ownerStatus('echo'))).toEqual([['wild', 'pending']]);
    ack(c, r);
    await eventually(() => expect(states(h.xds.ownerStatus('echo'))).toEqual([['wild', 'acked']]));
  });
});

describe('wasSent, groups in use and node metadata', () => {
  it('wasSent answers for the live streams of a node only', async () => {
    h = await startXds();
    h.set({ [CDS]: [cluster('a'), cluster('b')] });
    const c = h.sotw({ node: { id: 'n1' } });
    await subscribed(c, CDS, ['a']);
    expect(h.xds.wasSent('n1', CDS, 'a')).toBe(true);
    expect(h.xds.wasSent('n1', CDS, 'b')).toBe(false);
    expect(h.xds.wasSent('n1', LDS, 'a')).toBe(false);
    expect(h.xds.wasSent('n2', CDS, 'a')).toBe(false);
    c.cancel();
    await eventually(() => expect(h.xds.connectedStreams).toBe(0));
    expect(h.xds.wasSent('n1', CDS, 'a')).toBe(false);
  });

  it('decodes node metadata sent on a real stream, and tells which groups are in use', async () => {
    const seen: Record<string, unknown>[] = [];
    h = await startXds({
      groupOf: (node) => {
        seen.push(node.metadata);
        return String(node.metadata['sluice.flavour'] ?? 'grpc');
      },
    });
    const events: string[] = [];
    h.xds.on('groupActive', (g) => events.push(`active ${g}`));
    h.xds.on('groupIdle', (g) => events.push(`idle ${g}`));
    h.cache.set('envoy', { [CDS]: [cluster('a')] });

    const metadata = { 'sluice.flavour': 'envoy', nested: { zone: 'a', weights: [1, 2.5] }, list: ['x', true, null], n: 3, on: false };
    const envoy = h.sotw({ node: { id: 'with-metadata', metadata: struct(metadata) } });
    await subscribed(envoy, CDS, []);
    expect(seen).toEqual([metadata]);
    expect(h.fleetNode('with-metadata')?.group).toBe('envoy');
    expect(h.xds.activeGroups()).toEqual(['envoy']);

    // Delta requests take another decoding path.
    const deltaEnvoy = h.delta({ node: { id: 'delta-metadata', metadata: struct(metadata) } });
    await subscribed(deltaEnvoy, CDS, []);
    expect(seen).toEqual([metadata, metadata]);

    const grpcClient = h.sotw({ node: { id: 'plain' } });
    await subscribed(grpcClient, CDS, []);
    expect(h.xds.activeGroups()).toEqual(['envoy', 'grpc']);
    deltaEnvoy.cancel();
    envoy.cancel();
    await eventually(() => expect(h.xds.activeGroups()).toEqual(['grpc']));
    expect(events).toEqual(['active envoy', 'active grpc', 'idle envoy']);
  });
});
