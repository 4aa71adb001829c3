// NodeGroups with an access policy: a node's group is its kind narrowed to the services it asks
// for and may read; groups registered but never used (a Fetch, a refused node) do not pile up.
import { describe, expect, it } from 'vitest';
import { NodeGroups } from '../../src/reconcile/node-groups.js';
import type { XdsNode } from '../../src/xds/node.js';
import type { XdsPeer } from '../../src/xds/peer.js';

const node = (id: string, services?: string[]): XdsNode => ({
  id,
  cluster: '',
  userAgentName: 'envoy',
  userAgentVersion: '',
  clientFeatures: [],
  metadata: services ? { 'sluice.services': services } : {},
});
const peer = (address: string): XdsPeer => ({ address });

describe('node groups under a read policy', () => {
  // The policy here keys on the peer address; Sluice's keys on the certificate's identity.
  const groups = new NodeGroups((_n, p) => (p.address === 'shop' ? new Set(['echo']) : p.address === 'none' ? new Set<string>() : '*'));

  it('narrows to what the node may read, and never widens to what it asks for', () => {
    const shop = groups.groupOf(node('a'), peer('shop'));
    expect(groups.spec(shop)).toEqual({ kind: 'envoy', services: new Set(['echo']) });
    expect(groups.groupOf(node('b', ['echo', 'pay']), peer('shop'))).toBe(shop);
    expect(groups.spec(groups.groupOf(node('c'), peer('none')))).toEqual({ kind: 'envoy', services: new Set() });
    expect(groups.groupOf(node('d'), peer('admin'))).toBe('envoy');
    expect(groups.spec(groups.groupOf(node('e', ['pay']), peer('admin')))).toEqual({ kind: 'envoy', services: new Set(['pay']) });
  });

  it('keeps only the specs of groups that became active (plus the latest)', () => {
    const g = new NodeGroups(() => '*');
    const used = g.groupOf(node('a', ['echo']));
    g.activated(used);
    const ids = Array.from({ length: 100 }, (_, i) => g.groupOf(node(`f${i}`, [`s${i}`])));
    expect(ids.slice(0, -1).filter((id) => g.spec(id))).toEqual([]);
    expect(g.spec(ids.at(-1)!)).toBeDefined();
    expect(g.spec(used)).toEqual({ kind: 'envoy', services: new Set(['echo']) });
    // groupIdOf registers nothing.
    const peek = g.groupIdOf(node('p', ['peek']));
    expect(g.spec(peek)).toBeUndefined();
    g.forget(used);
    expect(g.spec(used)).toBeUndefined();
  });
});
