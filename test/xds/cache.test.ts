// ResourceCache and makeResource: versions follow the bytes, set() reports exactly what
// changed, views are memoized until their type changes.
import { describe, expect, it } from 'vitest';
import { ResourceCache, WILDCARD, selectionKey } from '../../src/xds/cache.js';
import { encodeMessage, messageType, TypeUrl } from '../../src/xds/protos.js';
import { makeResource } from '../../src/xds/resource.js';
import type { Resource } from '../../src/xds/resource.js';
import { decodeSotw } from '../support/ads-client.js';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;

function cluster(name: string, fields: Record<string, unknown> = {}): Resource {
  return makeResource(
    CDS,
    name,
    encodeMessage('envoy.config.cluster.v3.Cluster', { name, type: 'EDS', connect_timeout: { seconds: 1 }, ...fields }),
    { [EDS]: [name] },
  );
}

function endpoints(name: string, port = 8080): Resource {
  return makeResource(
    EDS,
    name,
    encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }],
    }),
  );
}

describe('makeResource', () => {
  it('gives equal bytes the same version, and any change of a field a new one', () => {
    const a = cluster('a');
    expect(cluster('a').version).toBe(a.version);
    expect(cluster('a').any.equals(a.any)).toBe(true);
    const variants = [
      cluster('b'),
      cluster('a', { connect_timeout: { seconds: 2 } }),
      cluster('a', { connect_timeout: { seconds: 1, nanos: 1 } }),
      cluster('a', { type: 'STRICT_DNS' }),
      cluster('a', { lb_policy: 'RING_HASH' }),
      cluster('a', { alt_stat_name: 'x' }),
    ];
    const versions = new Set([a.version, ...variants.map((r) => r.version)]);
    expect(versions.size).toBe(variants.length + 1);
  });

  it('wraps the message in an Any whose type_url is the resource type, ready for both response kinds', () => {
    const r = cluster('a');
    const any = messageType('google.protobuf.Any').decode(r.any) as unknown as { type_url: string; value: Uint8Array };
    expect(any.type_url).toBe(CDS);
    expect(Buffer.from(any.value).equals(Buffer.from(encodeMessage('envoy.config.cluster.v3.Cluster', { name: 'a', type: 'EDS', connect_timeout: { seconds: 1 } })))).toBe(true);

    const delta = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse').decode(r.deltaField) as unknown as {
      resources: { name: string; version: string; resource: { type_url: string } }[];
    };
    expect(delta.resources).toHaveLength(1);
    expect(delta.resources[0]).toMatchObject({ name: 'a', version: r.version, resource: { type_url: CDS } });
    expect(decodeSotw(r.sotwField).names).toEqual(['a']);
  });

  it('keeps the refs it was given', () => {
    expect(cluster('a').refs).toEqual({ [EDS]: ['a'] });
  });

  it('records owners: a list means each owner’s fragment is the resource version; owners are part of its identity', () => {
    const bytes = encodeMessage('envoy.config.cluster.v3.Cluster', { name: 'x', connect_timeout: { seconds: 1 } });
    const plain = makeResource(CDS, 'x', bytes);
    expect(Object.keys(plain.owners)).toEqual([]);
    const owned = makeResource(CDS, 'x', bytes, {}, ['echo']);
    expect(owned).not.toBe(plain);
    expect(owned.version).toBe(plain.version);
    expect({ ...owned.owners }).toEqual({ echo: owned.version });
    expect(makeResource(CDS, 'x', bytes, {}, ['echo'])).toBe(owned); // memoized with its owners
    expect(makeResource(CDS, 'x', bytes, {}, { echo: owned.version })).toBe(owned);
    const shared = makeResource(CDS, 'x', bytes, {}, { echo: 'f1', other: 'f2' });
    expect(shared).not.toBe(owned);
    expect({ ...shared.owners }).toEqual({ echo: 'f1', other: 'f2' });
    expect(makeResource(CDS, 'x', bytes, {}, { echo: 'f1', other: 'f3' }).owners.other).toBe('f3');
    // An owner named like an Object method is just a key.
    expect(shared.owners.constructor).toBeUndefined();
    expect(() => makeResource(CDS, 'x', bytes, {}, { '': 'f' })).toThrow(/non-empty/);
    expect(() => makeResource(CDS, 'x', bytes, {}, { echo: '' })).toThrow(/echo: the fragment version/);
  });
});

describe('ResourceCache.set', () => {
  it('keeps the identity of unchanged resources, replaces changed ones and drops missing ones', () => {
    const cache = new ResourceCache();
    const a = cluster('a');
    const b = cluster('b');
    cache.set('g', { [CDS]: [a, b] });
    const a2 = cluster('a'); // same bytes, another object
    const b2 = cluster('b', { connect_timeout: { seconds: 9 } });
    const c = cluster('c');
    cache.set('g', { [CDS]: [a2, b2, c] });
    const now = cache.resources('g', CDS);
    expect(now.get('a')).toBe(a); // identity kept
    expect(now.get('b')).toBe(b2);
    expect(now.get('c')).toBe(c);
    cache.set('g', { [CDS]: [cluster('a')] });
    expect([...cache.resources('g', CDS).keys()]).toEqual(['a']);
    expect(cache.resources('g', CDS).get('a')).toBe(a);
  });

  it('reports exactly the changed types, and tells listeners only when something changed', () => {
    const cache = new ResourceCache();
    const heard: [string, string[]][] = [];
    cache.onChange((group, types) => heard.push([group, [...types].sort()]));

    expect([...cache.set('g', { [CDS]: [cluster('a')], [EDS]: [endpoints('a')] })].sort()).toEqual([CDS, EDS].sort());
    expect([...cache.set('g', { [CDS]: [cluster('a')], [EDS]: [endpoints('a', 9090)] })]).toEqual([EDS]);
    expect(cache.set('g', { [CDS]: [cluster('a')], [EDS]: [endpoints('a', 9090)] }).size).toBe(0);
    // Order of the list does not matter; an empty list for a type that had nothing is no change.
    expect(cache.set('g', { [CDS]: [cluster('a')], [LDS]: [] }).size).toBe(0);
    // Types not named keep theirs.
    expect([...cache.set('g', { [CDS]: [] })]).toEqual([CDS]);
    expect(cache.resources('g', EDS).size).toBe(1);
    // Another group is another world.
    expect([...cache.set('h', { [EDS]: [endpoints('a', 9090)] })]).toEqual([EDS]);

    expect(heard).toEqual([
      ['g', [CDS, EDS].sort()],
      ['g', [EDS]],
      ['g', [CDS]],
      ['h', [EDS]],
    ]);
    expect(cache.groupNames().sort()).toEqual(['g', 'h']);
  });

  it('indexes resources by owner and tells listeners whose fragments changed', () => {
    const cache = new ResourceCache();
    const heard: string[][] = [];
    const attached: string[][] = [];
    cache.onChange((_g, _t, owners, newly) => {
      heard.push([...owners].sort());
      attached.push([...newly].sort());
    });
    const shared = (echo: number, other: number) =>
      makeResource(
        LDS,
        'shared',
        encodeMessage('envoy.config.listener.v3.Listener', { name: 'shared', stat_prefix: `${echo}-${other}` }),
        {},
        { echo: `e${echo}`, other: `o${other}` },
      );
    const only = (owner: string, port: number) =>
      makeResource(EDS, owner, encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', { cluster_name: owner, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }] }), {}, [owner]);
    cache.set('g', { [LDS]: [shared(1, 1)], [EDS]: [only('echo', 1)] });
    expect([...(cache.ownedBy('g', LDS, 'echo')?.keys() ?? [])]).toEqual(['shared']);
    expect([...(cache.ownedBy('g', EDS, 'echo')?.keys() ?? [])]).toEqual(['echo']);
    expect(cache.ownedBy('g', EDS, 'other')).toBeUndefined();
    expect([...cache.owners('g', LDS)].sort()).toEqual(['echo', 'other']);

    cache.set('g', { [LDS]: [shared(1, 2)] }); // only other's part changed
    cache.set('g', { [EDS]: [only('echo', 1), only('other', 2)] }); // other appears
    cache.set('g', { [EDS]: [only('other', 2)] }); // echo goes
    // The same bytes owned differently is a change of ownership (and of the index), not of bytes.
    const bytes = encodeMessage('envoy.config.listener.v3.Listener', { name: 'shared', stat_prefix: '1-2' });
    cache.set('g', { [LDS]: [makeResource(LDS, 'shared', bytes, {}, { echo: 'e1' })] });
    expect(heard).toEqual([['echo', 'other'], ['other'], ['other'], ['echo'], ['other']]);
    // Newly carried by a name: at first, when other's endpoints appear; never for a fragment
    // that only changed, a resource that went away, or an owner taken off a resource.
    expect(attached).toEqual([['echo', 'other'], [], ['other'], [], []]);
    expect(cache.ownedBy('g', LDS, 'other')).toBeUndefined();
    expect(cache.ownedBy('g', EDS, 'echo')).toBeUndefined();
  });

  it('rejects a resource filed under another type, and duplicate names', () => {
    const cache = new ResourceCache();
    expect(() => cache.set('g', { [EDS]: [cluster('a')] })).toThrow(/not/);
    expect(() => cache.set('g', { [CDS]: [cluster('a'), cluster('a', { alt_stat_name: 'x' })] })).toThrow(/duplicate/);
  });

  // Regression: a rejected set must change nothing (validate every type first, then apply).
  it('a rejected set changes nothing (no type half-applied without notice)', () => {
    const cache = new ResourceCache();
    cache.set('g', { [CDS]: [cluster('a')], [EDS]: [endpoints('a')] });
    const heard: string[][] = [];
    cache.onChange((_g, types) => heard.push([...types]));
    const before = cache.view('g', CDS, WILDCARD);
    expect(() => cache.set('g', { [CDS]: [cluster('a'), cluster('b')], [EDS]: [endpoints('a'), endpoints('a', 1)] })).toThrow(/duplicate/);
    // Either the whole set applies (and listeners hear of it) or none of it does.
    expect([...cache.resources('g', CDS).keys()]).toEqual(['a']);
    expect(cache.view('g', CDS, WILDCARD).version).toBe(before.version);
    expect(heard).toEqual([]);
  });
});

describe('ResourceCache.view', () => {
  it('is memoized per selection held by a stream until its type changes', () => {
    const cache = new ResourceCache();
    cache.set('g', { [CDS]: [cluster('a'), cluster('b')], [EDS]: [endpoints('a')] });
    cache.retainView('g', CDS, selectionKey(WILDCARD));
    cache.retainView('g', CDS, selectionKey(new Set(['a', 'b'])));
    const all = cache.view('g', CDS, WILDCARD);
    expect(cache.view('g', CDS, WILDCARD)).toBe(all);
    const ab = cache.view('g', CDS, new Set(['a', 'b']));
    expect(cache.view('g', CDS, new Set(['b', 'a']))).toBe(ab); // order of names does not matter
    // Another type changing, or a set with the same bytes, keeps the views.
    cache.set('g', { [EDS]: [endpoints('a', 1)] });
    cache.set('g', { [CDS]: [cluster('b'), cluster('a')] });
    expect(cache.view('g', CDS, WILDCARD)).toBe(all);
    expect(cache.view('g', CDS, new Set(['a', 'b']))).toBe(ab);
    // A change of the type invalidates them.
    cache.set('g', { [CDS]: [cluster('a'), cluster('b', { alt_stat_name: 'x' })] });
    const all2 = cache.view('g', CDS, WILDCARD);
    expect(all2).not.toBe(all);
    expect(all2.version).not.toBe(all.version);
    expect(cache.view('g', CDS, new Set(['a', 'b']))).not.toBe(ab);
  });

  it('keeps no view of a selection nobody holds, and drops one when its last holder releases it', () => {
    const cache = new ResourceCache();
    cache.set('g', { [CDS]: [cluster('a'), cluster('b')] });
    const once = cache.view('g', CDS, new Set(['a']));
    expect(cache.view('g', CDS, new Set(['a']))).not.toBe(once); // a Fetch, say: built, not kept
    expect(cache.view('g', CDS, new Set(['a'])).version).toBe(once.version);
    expect(cache.memoStats()).toEqual({ views: 0, selections: 0 });

    const key = selectionKey(new Set(['a']));
    cache.retainView('g', CDS, key);
    cache.retainView('g', CDS, key); // two streams with the same selection
    const held = cache.view('g', CDS, new Set(['a']));
    expect(cache.view('g', CDS, new Set(['a']))).toBe(held);
    cache.releaseView('g', CDS, key);
    expect(cache.view('g', CDS, new Set(['a']))).toBe(held);
    cache.releaseView('g', CDS, key);
    expect(cache.memoStats()).toEqual({ views: 0, selections: 0 });
    expect(cache.view('g', CDS, new Set(['a']))).not.toBe(held);
  });

  it('a view version depends only on the resources in it', () => {
    const cache = new ResourceCache();
    cache.set('g', { [CDS]: [cluster('a'), cluster('b')] });
    const onlyA = cache.view('g', CDS, new Set(['a']));
    const withMissing = cache.view('g', CDS, new Set(['a', 'not-there']));
    expect(withMissing.version).toBe(onlyA.version);
    expect(cache.view('g', CDS, new Set(['a', 'b'])).version).toBe(cache.view('g', CDS, WILDCARD).version);
    cache.set('g', { [CDS]: [cluster('a'), cluster('b', { alt_stat_name: 'x' })] });
    expect(cache.view('g', CDS, new Set(['a'])).version).toBe(onlyA.version); // b is not in it
    expect(cache.view('g', CDS, new Set([])).resources.size).toBe(0);
  });

  it('its body is a DiscoveryResponse (minus nonce) with resources sorted by name', () => {
    const cache = new ResourceCache('test-cp');
    cache.set('g', { [CDS]: [cluster('b'), cluster('c'), cluster('a')] });
    const view = cache.view('g', CDS, WILDCARD);
    const r = decodeSotw(view.body);
    expect(r.version_info).toBe(view.version);
    expect(r.type_url).toBe(CDS);
    expect(r.names).toEqual(['a', 'b', 'c']);
    expect(r.nonce).toBe('');
    expect(r.control_plane).toBe('test-cp');
    expect([...view.resources.keys()]).toEqual(['a', 'b', 'c']);
  });

  it('compose() gives the same version as a view with the same resources', () => {
    const cache = new ResourceCache();
    const a = cluster('a');
    const b = cluster('b');
    cache.set('g', { [CDS]: [a, b] });
    expect(cache.compose(CDS, [b, a]).version).toBe(cache.view('g', CDS, WILDCARD).version);
    expect(cache.view('g', EDS, WILDCARD).resources.size).toBe(0);
    expect(cache.view('nope', CDS, WILDCARD).resources.size).toBe(0);
  });
});

describe('ResourceCache.patch', () => {
  const owned = (name: string, owner: string, port = 8080) =>
    makeResource(
      EDS,
      name,
      encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', {
        cluster_name: name,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.9', port_value: port } } } }] }],
      }),
      {},
      [owner],
    );

  it('adds, replaces and removes only the named resources; the rest keep their identity', () => {
    const cache = new ResourceCache();
    const [a, b, c] = [cluster('a'), cluster('b'), cluster('c')];
    cache.set('g', { [CDS]: [a, b, c] });
    const seen: [string, string[], string[]][] = [];
    cache.onChange((group, types, owners) => seen.push([group, [...types], [...owners]]));
    const b2 = cluster('b', { connect_timeout: { seconds: 9 } });
    const d = cluster('d');
    expect([...cache.patch('g', { [CDS]: { put: [b2, d], remove: ['c'] } })]).toEqual([CDS]);
    const now = cache.resources('g', CDS);
    expect([...now.keys()].sort()).toEqual(['a', 'b', 'd']);
    expect(now.get('a')).toBe(a);
    expect(now.get('b')).toBe(b2);
    expect(seen).toEqual([['g', [CDS], []]]);
    // The same content again changes nothing and tells nobody.
    expect(cache.patch('g', { [CDS]: { put: [cluster('b', { connect_timeout: { seconds: 9 } })], remove: ['zzz'] } }).size).toBe(0);
    expect(seen).toHaveLength(1);
  });

  it('keeps the owner index and reports the owners whose part changed', () => {
    const cache = new ResourceCache();
    cache.patch('g', { [EDS]: { put: [owned('x-v1', 'x'), owned('y-v1', 'y')] } });
    expect([...cache.owners('g', EDS)].sort()).toEqual(['x', 'y']);
    let owners: string[] = [];
    let attached: string[] = [];
    cache.onChange((_g, _t, o, newly) => {
      owners = [...o];
      attached = [...newly];
    });
    cache.patch('g', { [EDS]: { put: [owned('x-v1', 'x', 9090)], remove: ['y-v1'] } });
    expect(owners.sort()).toEqual(['x', 'y']);
    expect(attached).toEqual([]); // x's fragment changed, y's went away: nobody newly concerned
    expect([...cache.owners('g', EDS)]).toEqual(['x']);
    expect([...cache.ownedBy('g', EDS, 'x')!.keys()]).toEqual(['x-v1']);
    expect(cache.ownedBy('g', EDS, 'y')).toBeUndefined();
    // A resource moving to another owner leaves the old one's index.
    cache.patch('g', { [EDS]: { put: [owned('x-v1', 'z', 9090)] } });
    expect(owners.sort()).toEqual(['x', 'z']);
    expect(attached).toEqual(['z']);
    expect([...cache.owners('g', EDS)]).toEqual(['z']);
  });

  it('gives views built afterwards the new content, and changes nothing when it is rejected', () => {
    const cache = new ResourceCache();
    cache.patch('g', { [CDS]: { put: [cluster('a')] } });
    cache.retainView('g', CDS, WILDCARD);
    const before = cache.view('g', CDS, WILDCARD);
    cache.patch('g', { [CDS]: { put: [cluster('b')] } });
    const after = cache.view('g', CDS, WILDCARD);
    expect(after.version).not.toBe(before.version);
    expect([...after.resources.keys()]).toEqual(['a', 'b']);
    expect(() => cache.patch('g', { [CDS]: { put: [cluster('c'), cluster('c')] } })).toThrow('duplicate');
    expect(() => cache.patch('g', { [CDS]: { put: [cluster('d')] }, [LDS]: { put: [cluster('e')] } })).toThrow('is type.googleapis.com/envoy.config.cluster.v3.Cluster');
    expect([...cache.resources('g', CDS).keys()]).toEqual(['a', 'b']);
    expect(cache.view('g', CDS, WILDCARD).version).toBe(after.version);
  });
});
