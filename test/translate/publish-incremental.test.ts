// The reconciler publishes incrementally (only the services that changed are translated and
// patched into the cache): after any sequence of changes, every cache group must hold exactly
// what publishing the final state from scratch gives. And what depends on history by design:
// a service whose names clash keeps out of the way until the names are free, then comes in.
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/model/rollout.js';
import type { NamedService } from '../../src/model/service.js';
import { NodeGroups, SERVICES_METADATA_KEY } from '../../src/reconcile/node-groups.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { createRollout, transition } from '../../src/rollout/machine.js';
import type { DesiredState } from '../../src/state/desired-state.js';
import type { ClientKind } from '../../src/translate/client-kind.js';
import { EnvoyKind } from '../../src/translate/envoy.js';
import { ScopedEnvoyKind } from '../../src/translate/envoy-scoped.js';
import { GrpcKind } from '../../src/translate/grpc.js';
import { DEFAULT_ENVOY_LISTENER } from '../../src/translate/listeners.js';
import { Translator } from '../../src/translate/translate.js';
import { ResourceCache } from '../../src/xds/cache.js';
import { nodeFromRequest } from '../../src/xds/node.js';
import { TypeUrl } from '../../src/xds/protos.js';

const NAMES = ['a', 'b', 'c', 'd', 'e'];
const log = pino({ level: 'silent' });

/** A reconciler on its own cache, with the kind groups and one group scoped to services a and b. */
function setup(envoy: () => ClientKind) {
  const cache = new ResourceCache('t');
  const groups = new NodeGroups();
  const reconciler = new Reconciler({ cache, groups, log, translator: new Translator([new GrpcKind(), envoy()]) });
  const scoped = groups.groupOf(nodeFromRequest({ id: 'n', user_agent_name: 'envoy', metadata: { fields: { [SERVICES_METADATA_KEY]: { stringValue: 'a,b' } } } }));
  reconciler.activate(scoped);
  return { cache, reconciler, groups: ['grpc', 'envoy', scoped] };
}

/** Every group's content: type → name → version. */
function contents(cache: ResourceCache, groups: string[]): Record<string, Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, Record<string, string>>> = {};
  for (const g of groups) {
    out[g] = {};
    for (const t of Object.values(TypeUrl)) {
      const m = cache.resources(g, t);
      if (m.size > 0) out[g]![t] = Object.fromEntries([...m].map(([n, r]) => [n, r.version]).sort());
    }
  }
  return out;
}

const service = (name: string, versions: string[], stable: number, port: number): NamedService => ({
  name,
  stable: versions[stable % versions.length]!,
  versions: Object.fromEntries(versions.map((v) => [v, { endpoints: [{ address: '10.0.0.1', port }] }])),
});

type Op =
  | { op: 'put'; name: string; versions: string[]; stable: number; port: number }
  | { op: 'delete'; name: string }
  | { op: 'rollout'; name: string; weight: number }
  | { op: 'rollback'; name: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('put' as const),
    name: fc.constantFrom(...NAMES),
    versions: fc.uniqueArray(fc.constantFrom('v1', 'v2', 'v3'), { minLength: 1, maxLength: 3 }),
    stable: fc.nat(2),
    port: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ op: fc.constant('delete' as const), name: fc.constantFrom(...NAMES) }),
  fc.record({ op: fc.constant('rollout' as const), name: fc.constantFrom(...NAMES), weight: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ op: fc.constant('rollback' as const), name: fc.constantFrom(...NAMES) }),
);

/** Applies an op to the state; returns the changed service, or undefined when it does not apply. */
function apply(state: { services: Map<string, NamedService>; rollouts: Map<string, RolloutState> }, o: Op): string | undefined {
  const s = state.services.get(o.name);
  const r = state.rollouts.get(o.name);
  const active = r && (r.phase === 'Progressing' || r.phase === 'Paused');
  if (o.op === 'put') {
    if (active) return undefined;
    state.services.set(o.name, service(o.name, o.versions, o.stable, o.port));
  } else if (o.op === 'delete') {
    if (!s || active) return undefined;
    state.services.delete(o.name);
    state.rollouts.delete(o.name);
  } else if (o.op === 'rollout') {
    const canary = s && Object.keys(s.versions).find((v) => v !== s.stable);
    if (!s || !canary || active) return undefined;
    state.rollouts.set(o.name, createRollout(`${o.name}-r`, { service: o.name, canary, steps: [{ setWeight: o.weight }, { pause: {} }] }, s.stable, new Date(0), 't'));
  } else {
    if (!r || !active) return undefined;
    state.rollouts.set(o.name, transition(r, { type: 'rollback' }, new Date(1), 't').state);
  }
  return o.name;
}

describe.each([
  ['single route configuration', () => new EnvoyKind(DEFAULT_ENVOY_LISTENER)],
  ['scoped routes', () => new ScopedEnvoyKind(DEFAULT_ENVOY_LISTENER)],
] as const)('incremental publishing, Envoy with %s', (_label, envoy) => {
  it('leaves every group as a publish of the final state from scratch would', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 }), async (batches) => {
        const live = setup(envoy);
        const state = { services: new Map<string, NamedService>(), rollouts: new Map<string, RolloutState>() };
        let revision = 0;
        for (const batch of batches) {
          // A batch is coalesced into one publish (the debounce), as several changes would be.
          const changed = batch.map((o) => apply(state, o)).filter((n): n is string => !!n);
          const snapshot: DesiredState = { revision: ++revision, services: new Map(state.services), rollouts: new Map(state.rollouts) };
          live.reconciler.apply({ state: snapshot, services: changed, urgent: false });
          live.reconciler.publishNow();
          // Groups are brought up to date one per turn of the event loop; the next batch may come first.
          if (revision % 2 === 0) await live.reconciler.whenPublished(revision);
        }
        await live.reconciler.whenPublished(revision);
        const fresh = setup(envoy);
        fresh.reconciler.apply({ state: { revision: 1, services: new Map(state.services), rollouts: new Map(state.rollouts) }, services: [], urgent: true });
        await fresh.reconciler.whenPublished(1);
        expect(contents(live.cache, live.groups)).toEqual(contents(fresh.cache, fresh.groups));
        expect(live.reconciler.serviceErrors()).toEqual(fresh.reconciler.serviceErrors());
        live.reconciler.close();
        fresh.reconciler.close();
      }),
      { numRuns: 150 },
    );
  });
});

describe('what depends on history', () => {
  const withCluster = (name: string, cluster: string): NamedService => ({
    name,
    stable: 'v1',
    versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 80 }], cluster } },
  });

  it('a service whose cluster name is taken stays out, and comes in once the owner lets go, without changing itself', async () => {
    const { cache, reconciler } = setup(() => new EnvoyKind(DEFAULT_ENVOY_LISTENER));
    const services = new Map<string, NamedService>([['b', withCluster('b', 'shared')]]);
    const publish = (changed: string[], revision: number) => {
      reconciler.apply({ state: { revision, services: new Map(services), rollouts: new Map() }, services: changed, urgent: true });
      return reconciler.whenPublished(revision);
    };
    await publish(['b'], 1);
    services.set('a', withCluster('a', 'shared')); // a sorts first, but b had the name first
    await publish(['a'], 2);
    expect(reconciler.serviceErrors().get('a')).toMatch('resource "shared" is also served by service "b"');
    expect(cache.resources('grpc', TypeUrl.Cluster).get('shared')!.owners).toHaveProperty('b');
    services.set('b', withCluster('b', 'b-own'));
    await publish(['b'], 3);
    expect(reconciler.serviceErrors().size).toBe(0);
    expect(cache.resources('grpc', TypeUrl.Cluster).get('shared')!.owners).toHaveProperty('a');
    expect(cache.resources('envoy', TypeUrl.Cluster).has('b-own')).toBe(true);
  });

  it('a service that stops translating keeps its last good resources and says why', async () => {
    const { cache, reconciler } = setup(() => new ScopedEnvoyKind(DEFAULT_ENVOY_LISTENER));
    const good: NamedService = { name: 'a', stable: 'v1', versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 80 }] } } };
    reconciler.apply({ state: { revision: 1, services: new Map([['a', good]]), rollouts: new Map() }, services: ['a'], urgent: true });
    await reconciler.whenPublished(1);
    const rc = cache.resources('envoy', TypeUrl.RouteConfiguration).get('a');
    expect(rc).toBeDefined();
    reconciler.apply({ state: { revision: 2, services: new Map([['a', { ...good, domains: ['*.a.example'] }]]), rollouts: new Map() }, services: ['a'], urgent: true });
    await reconciler.whenPublished(2);
    expect(reconciler.serviceErrors().get('a')).toMatch('is not an exact host name');
    expect(cache.resources('envoy', TypeUrl.RouteConfiguration).get('a')).toBe(rc);
    // The gRPC kind translates it: its resources follow the change.
    expect(cache.resources('grpc', TypeUrl.RouteConfiguration).get('a')).toBeDefined();
  });
});
