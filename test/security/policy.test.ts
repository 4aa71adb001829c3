// The xDS policy: its file format (YAML or JSON, every fault named), glob patterns, and decisions.
import { describe, expect, it } from 'vitest';
import { globMatch, parsePolicy } from '../../src/security/policy.js';

const POLICY = `
rules:
  - identity: "spiffe://example.org/ns/shop/*"
    nodeIds: ["shop-*"]
    services: [echo]
  - identity: "spiffe://example.org/ns/shop/sa/reports"
    nodeIds: ["shop-*"]
    nodeClusters: [reports]
    services: [pay]
  - identity: ops-admin
    nodeIds: ["*"]
    services: ["*"]
`;

describe('xDS policy decisions', () => {
  const policy = parsePolicy(POLICY);

  it('grants the union of the services of every rule that matches identity, node id and cluster', () => {
    expect(policy.decide('spiffe://example.org/ns/shop/sa/web', { id: 'shop-1', cluster: 'web' })).toEqual({ allowed: true, services: new Set(['echo']) });
    expect(policy.decide('spiffe://example.org/ns/shop/sa/reports', { id: 'shop-9', cluster: 'reports' })).toEqual({ allowed: true, services: new Set(['echo', 'pay']) });
    expect(policy.decide('ops-admin', { id: 'anything', cluster: '' })).toEqual({ allowed: true, services: '*' });
  });

  it('does not depend on the order of the rules', () => {
    const reversed = parsePolicy(JSON.stringify({ rules: [...parsePolicy(POLICY).rules].reverse() }));
    for (const [id, node] of [
      ['spiffe://example.org/ns/shop/sa/reports', { id: 'shop-9', cluster: 'reports' }],
      ['spiffe://example.org/ns/shop/sa/web', { id: 'shop-1', cluster: 'web' }],
      ['ops-admin', { id: 'x', cluster: '' }],
    ] as const)
      expect(reversed.decide(id, node)).toEqual(policy.decide(id, node));
  });

  it('names what was refused: an unknown identity, a foreign node id, a foreign node cluster', () => {
    expect(policy.decide('spiffe://example.org/ns/pay/sa/x', { id: 'pay-1', cluster: '' })).toEqual({
      allowed: false,
      message: 'identity "spiffe://example.org/ns/pay/sa/x" matches no rule of the xDS policy',
    });
    expect(policy.decide('spiffe://example.org/ns/shop/sa/web', { id: 'pay-1', cluster: '' })).toEqual({
      allowed: false,
      message: 'identity "spiffe://example.org/ns/shop/sa/web" may not claim node id "pay-1"',
    });
    // The reports identity matches the first rule too, so only the second rule's cluster is narrowed.
    expect(policy.decide('spiffe://example.org/ns/shop/sa/reports', { id: 'shop-2', cluster: 'web' })).toEqual({ allowed: true, services: new Set(['echo']) });
    const strict = parsePolicy('rules: [{identity: a, nodeIds: [n], nodeClusters: [c], services: [echo]}]');
    expect(strict.decide('a', { id: 'n', cluster: 'd' })).toEqual({ allowed: false, message: 'identity "a" may not claim node cluster "d" for node id "n"' });
  });

  it('refuses everyone with an empty rule list', () => {
    expect(parsePolicy('rules: []').decide('ops-admin', { id: 'x', cluster: '' })).toMatchObject({ allowed: false });
  });
});

describe('glob patterns', () => {
  it('`*` matches any run of characters, slashes included; everything else is literal', () => {
    expect(globMatch('spiffe://example.org/ns/shop/*', 'spiffe://example.org/ns/shop/sa/web')).toBe(true);
    expect(globMatch('spiffe://example.org/ns/shop/*', 'spiffe://example.org/ns/shopping/sa/web')).toBe(false);
    expect(globMatch('shop-*', 'shop-')).toBe(true);
    expect(globMatch('*-canary-*', 'a-canary-b')).toBe(true);
    expect(globMatch('*-canary-*', 'a-canaryb')).toBe(false);
    expect(globMatch('a.b', 'axb')).toBe(false); // no regex meaning
    expect(globMatch('a?', 'ab')).toBe(false);
    expect(globMatch('exact', 'Exact')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
  });

  it('answers a pattern with many stars against a long near-miss (no backtracking blow-up)', () => {
    expect(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
  });
});

describe('policy file format', () => {
  const fault = (text: string) => {
    try {
      parsePolicy(text);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('parsed');
  };

  it('takes JSON as well as YAML', () => {
    expect(parsePolicy('{"rules": [{"identity": "a", "nodeIds": ["*"], "services": ["echo"]}]}').rules).toHaveLength(1);
  });

  it('names the line of a syntax error and the field of a bad value', () => {
    expect(fault('rules:\n  - identity: [unclosed\n')).toMatch(/^not YAML or JSON \(line \d+\)/);
    expect(fault('rules: [{identity: a, nodeIds: ["*"], services: ["no spaces"]}]')).toBe('rules[0].services[0]: must be a service name or "*"');
    expect(fault('rules: [{identity: a, nodeIds: [], services: [echo]}]')).toBe('rules[0].nodeIds: must list at least one pattern ("*" for any)');
    expect(fault('rules: [{identity: a, nodeIds: ["*"], services: [echo], role: admin}]')).toMatch(/^rules\[0\]: Unrecognized key: "role"/);
    expect(fault('rules: [{identity: "", nodeIds: ["*"], services: [echo]}]')).toBe('rules[0].identity: must not be empty');
    expect(fault('rule: []')).toMatch(/Unrecognized key: "rule"/);
  });
});
