// Sticky users by bucket: the rollout option, the bucket a client computes from a user id, and
// the routes both kinds of client get (decoded back through the Envoy protos, strictly).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { userBucket } from '../../src/demo/user-bucket.js';
import { RolloutSpecSchema, StickySchema } from '../../src/model/rollout.js';
import type { NamedService } from '../../src/model/service.js';
import { routingOf } from '../../src/reconcile/routing-of.js';
import { DEFAULT_ENVOY_LISTENER } from '../../src/translate/listeners.js';
import { canaryBuckets } from '../../src/translate/routes.js';
import type { Routing } from '../../src/translate/routing.js';
import { stableRouting } from '../../src/translate/routing.js';
import type { ResourcesByType } from '../../src/translate/translate.js';
import { translateEnvoy, translateGrpc } from '../../src/translate/translate.js';
import { messageType, TypeUrl, unpackAny } from '../../src/xds/protos.js';
import { decodeStrict } from '../support/strict-decode.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const chat: NamedService = {
  name: 'chat',
  stable: 'v1',
  versions: { v1: { endpoints: [{ address: '10.0.0.1', port: 50051 }] }, v2: { endpoints: [{ address: '10.0.0.2', port: 50051 }] } },
  timeout: '2s',
};

const bucketed = (canary: number, buckets = 100, headerRoutes: Routing['headerRoutes'] = []): Routing => ({
  service: chat,
  split: [
    { version: 'v2', weight: canary },
    { version: 'v1', weight: 100 - canary },
  ].filter((s) => s.weight > 0),
  headerRoutes,
  sticky: { bucketHeader: 'X-User-Bucket', buckets },
});

function decoded(out: ResourcesByType, name: string): Obj {
  const r = out[TypeUrl.RouteConfiguration]!.find((x) => x.name === name)!;
  return unpackAny(messageType('google.protobuf.Any').decode(r.any) as never) as Obj;
}
const grpcRoutes = (r: Routing): Obj[] => decoded(translateGrpc([r]), r.service.name).virtual_hosts[0].routes;
const envoyRoutes = (r: Routing): Obj[] => decoded(translateEnvoy([r], DEFAULT_ENVOY_LISTENER), DEFAULT_ENVOY_LISTENER.name).virtual_hosts[0].routes;

describe('the sticky option', () => {
  const parse = (sticky: unknown) => StickySchema.safeParse(sticky);
  const issues = (sticky: unknown) =>
    RolloutSpecSchema.safeParse({ service: 'chat', canary: 'v2', steps: [{ setWeight: 5 }], sticky }).error?.issues.map((i) => ({
      path: i.path,
      message: i.message,
    })) ?? [];

  it('takes a bucket header with 100 buckets by default, or 1 to 10,000', () => {
    expect(parse({ bucketHeader: 'x-user-bucket' }).data).toEqual({ bucketHeader: 'x-user-bucket', buckets: 100 });
    expect(parse({ bucketHeader: 'X-B', buckets: 1 }).data).toEqual({ bucketHeader: 'X-B', buckets: 1 });
    expect(parse({ bucketHeader: 'x-b', buckets: 10_000 }).data).toEqual({ bucketHeader: 'x-b', buckets: 10_000 });
    // The hash-based options are unchanged.
    expect(parse({ header: 'x-user' }).data).toEqual({ header: 'x-user' });
    expect(parse({ cookie: 'uid' }).data).toEqual({ cookie: 'uid' });
  });

  it.each<[string, unknown, (string | number)[], RegExp]>([
    ['no buckets', { bucketHeader: 'x-b', buckets: 0 }, ['sticky', 'buckets'], /1/],
    ['too many buckets', { bucketHeader: 'x-b', buckets: 10_001 }, ['sticky', 'buckets'], /10000/],
    ['fractional buckets', { bucketHeader: 'x-b', buckets: 1.5 }, ['sticky', 'buckets'], /integer|int/i],
    ['buckets as text', { bucketHeader: 'x-b', buckets: '100' }, ['sticky', 'buckets'], /number/],
    ['buckets without bucketHeader', { header: 'x-user', buckets: 10 }, ['sticky', 'buckets'], /only with bucketHeader/],
    ['buckets alone', { buckets: 10 }, ['sticky'], /exactly one of header, cookie, bucketHeader/],
    ['bucketHeader and header', { bucketHeader: 'x-b', header: 'x-user' }, ['sticky'], /got header, bucketHeader/],
    ['bucketHeader and cookie', { bucketHeader: 'x-b', cookie: 'uid' }, ['sticky'], /got cookie, bucketHeader/],
    ['an invalid header name', { bucketHeader: 'x b' }, ['sticky', 'bucketHeader'], /valid header name/],
    ['a pseudo-header', { bucketHeader: ':path' }, ['sticky', 'bucketHeader'], /valid header name/],
    ['an empty name', { bucketHeader: '' }, ['sticky', 'bucketHeader'], /valid header name/],
    ['binary metadata', { bucketHeader: 'x-bucket-bin' }, ['sticky', 'bucketHeader'], /-bin/],
    ['a gRPC-reserved name', { bucketHeader: 'grpc-bucket' }, ['sticky', 'bucketHeader'], /grpc-/],
    ['an unknown field', { bucketHeader: 'x-b', bucketCount: 10 }, ['sticky'], /bucketCount/],
  ])('rejects %s, naming the field', (_, sticky, path, message) => {
    const found = issues(sticky);
    expect(found.map((i) => i.path)).toContainEqual(path);
    expect(found.find((i) => JSON.stringify(i.path) === JSON.stringify(path))!.message).toMatch(message);
  });

  it('reaches the routing of an active rollout with its buckets', () => {
    const spec = RolloutSpecSchema.parse({ service: 'chat', canary: 'v2', steps: [{ setWeight: 20 }], sticky: { bucketHeader: 'x-b' } });
    const rollout = { spec, stable: 'v1', canary: 'v2', canaryWeight: 20, phase: 'Progressing', headerRoutesActive: true } as never;
    expect(routingOf(chat, rollout).sticky).toEqual({ bucketHeader: 'x-b', buckets: 100 });
  });
});

describe('userBucket (docs/sticky.md)', () => {
  // Computed with Python's hashlib (docs/sticky.md): the same in every language.
  it.each([
    ['alice', 7, 207],
    ['bob@example.com', 88, 388],
    ['用户-42', 53, 153], // first 8 bytes e2d5e0669e81c991: above 2^63, so read unsigned
  ])('%s → bucket %i of 100, %i of 1000', (user, of100, of1000) => {
    expect(userBucket(user, 100)).toBe(of100);
    expect(userBucket(user, 1000)).toBe(of1000);
    expect(userBucket(user)).toBe(of100);
  });

  it('lies in [0, buckets) for any user id', () => {
    fc.assert(fc.property(fc.string(), fc.integer({ min: 1, max: 10_000 }), (user, n) => {
      const b = userBucket(user, n);
      return Number.isInteger(b) && b >= 0 && b < n;
    }));
  });
});

describe('bucket routes', () => {
  const CANARY_20 = {
    name: 'chat/sticky-canary',
    match: { prefix: '', headers: [{ name: 'x-user-bucket', range_match: { end: '20' } }] },
  };
  const STABLE = { name: 'chat/sticky-stable', match: { prefix: '', headers: [{ name: 'x-user-bucket', present_match: true }] } };

  it('come after header cohorts and before the weighted split, in the same form for both kinds', () => {
    const cohort = [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }], version: 'v2' }];
    for (const routes of [grpcRoutes(bucketed(20, 100, cohort)), envoyRoutes(bucketed(20, 100, cohort))]) {
      expect(routes.map((r) => r.name)).toEqual(['chat/testers', 'chat/sticky-canary', 'chat/sticky-stable', 'chat/default']);
      expect(routes[1]).toMatchObject({ ...CANARY_20, route: { cluster: 'chat-v2' } });
      expect(routes[2]).toMatchObject({ ...STABLE, route: { cluster: 'chat-v1' } });
      // Requests without the header keep the weighted random split, canary first.
      expect(routes[3].route.weighted_clusters.clusters.map((c: Obj) => [c.name, c.weight.value])).toEqual([
        ['chat-v2', 20],
        ['chat-v1', 80],
      ]);
    }
    // The bucket routes carry nothing kind-specific but the route policy each kind reads.
    const strip = (r: Obj) => ({ name: r.name, match: r.match, cluster: r.route.cluster });
    expect(grpcRoutes(bucketed(20)).slice(0, 2).map(strip)).toEqual(envoyRoutes(bucketed(20)).slice(0, 2).map(strip));
    expect(envoyRoutes(bucketed(20))[0].route.timeout).toEqual({ seconds: '2', nanos: 0 });
    expect(grpcRoutes(bucketed(20))[0].route.max_stream_duration).toEqual({ max_stream_duration: { seconds: '2', nanos: 0 } });
  });

  it('send no hash policy to Envoy (the buckets replace it)', () => {
    const split = envoyRoutes(bucketed(20)).at(-1)!.route;
    expect(split.hash_policy).toBeUndefined();
    expect(split.weighted_clusters.use_hash_policy).toBeUndefined();
  });

  it('cover round(weight * buckets / 100) buckets, and none when that is 0', () => {
    expect(grpcRoutes(bucketed(5, 1000))[0].match.headers).toEqual([{ name: 'x-user-bucket', range_match: { end: '50' } }]);
    expect(grpcRoutes(bucketed(25, 10))[0].match.headers[0].range_match).toEqual({ end: '3' }); // 2.5 rounds up
    expect(grpcRoutes(bucketed(1, 10_000))[0].match.headers[0].range_match).toEqual({ end: '100' });
    const none = grpcRoutes(bucketed(4, 10)); // round(0.4) = 0: every bucket stays on stable
    expect(none.map((r) => r.name)).toEqual(['chat/sticky-stable', 'chat/default']);
    expect(envoyRoutes(bucketed(4, 10)).map((r) => r.name)).toEqual(['chat/sticky-stable', 'chat/default']);
  });

  it('are absent when one version takes everything: a rollback is the plain single route', () => {
    for (const routing of [stableRouting(chat), { ...stableRouting(chat), sticky: { bucketHeader: 'x-b', buckets: 100 } }, bucketed(0), bucketed(100)]) {
      for (const routes of [grpcRoutes(routing), envoyRoutes(routing)]) {
        expect(routes).toHaveLength(1);
        expect(Object.keys(routes[0].route)).toEqual(expect.arrayContaining(['cluster']));
        expect(routes[0].route.weighted_clusters).toBeUndefined();
      }
    }
  });

  it('only grow with the weight: a bucket on the canary stays there, and 100% is every bucket', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (buckets, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        return canaryBuckets(lo, buckets) <= canaryBuckets(hi, buckets) && canaryBuckets(100, buckets) === buckets && canaryBuckets(0, buckets) === 0;
      }),
    );
  });

  it('decode strictly for Envoy, with no deprecated field, and for gRPC', () => {
    const cohort = [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }], version: 'v2' }];
    for (const [out, allowDeprecated] of [
      [translateEnvoy([bucketed(20, 100, cohort)], DEFAULT_ENVOY_LISTENER), false],
      [translateEnvoy([bucketed(4, 10)], DEFAULT_ENVOY_LISTENER), false],
      // gRPC nodes get the older, deprecated header fields for cohorts (README's client table).
      [translateGrpc([bucketed(20, 100, cohort)]), true],
    ] as const)
      for (const list of Object.values(out))
        for (const r of list) expect(decodeStrict('google.protobuf.Any', r.any, { allowDeprecated }).problems, `${r.typeUrl} ${r.name}`).toEqual([]);
    // The bucket routes alone are free of deprecated fields for gRPC nodes too.
    const rc = translateGrpc([bucketed(20)])[TypeUrl.RouteConfiguration]![0]!;
    expect(decodeStrict('google.protobuf.Any', rc.any).problems).toEqual([]);
  });
});
