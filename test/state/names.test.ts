// Names that are also members of Object.prototype ("constructor", "toString", ...) are ordinary
// names: as services and versions they work end to end, and where they are not declared they
// are refused — never found on the prototype chain.
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { NAME, ServiceSchema } from '../../src/model/service.js';
import { NodeGroups } from '../../src/reconcile/node-groups.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { StateWriter } from '../../src/state/writer.js';
import { FileStore } from '../../src/store/file-store.js';
import { EnvoyKind } from '../../src/translate/envoy.js';
import { GrpcKind } from '../../src/translate/grpc.js';
import { DEFAULT_ENVOY_LISTENER } from '../../src/translate/listeners.js';
import { Translator } from '../../src/translate/translate.js';
import { ResourceCache } from '../../src/xds/cache.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { tempDir } from '../support/sluice.js';

const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).filter((n) => NAME.test(n));
const endpoint = (port: number) => ({ endpoints: [{ address: '10.0.0.1', port }] });

async function world() {
  const cache = new ResourceCache();
  const reconciler = new Reconciler({ cache, log: pino({ level: 'silent' }), groups: new NodeGroups(), translator: new Translator([new GrpcKind(), new EnvoyKind(DEFAULT_ENVOY_LISTENER)]) });
  const writer = new StateWriter({ store: await FileStore.open(tempDir()), log: pino({ level: 'silent' }), check: (c, s) => reconciler.check(c, s) });
  writer.on('change', (c) => reconciler.apply({ ...c, urgent: true }));
  await writer.load();
  return { cache, writer };
}

describe('names from Object.prototype', () => {
  it('covers the members a lookup could find', () => {
    expect(PROTOTYPE_NAMES).toEqual(expect.arrayContaining(['constructor', 'hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf']));
  });

  it('are refused as stable or canary when not declared', async () => {
    const { writer } = await world();
    await writer.putService('svc', { versions: { v1: endpoint(1), v2: endpoint(2) }, stable: 'v1' }, 'test');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...PROTOTYPE_NAMES), async (name) => {
        const parsed = ServiceSchema.safeParse({ versions: { v1: endpoint(1) }, stable: name });
        expect(parsed.success).toBe(false);
        expect(parsed.error!.issues[0]!.path).toEqual(['stable']);
        await expect(writer.createRollout({ service: 'svc', canary: name, steps: [{ setWeight: 10 }] }, 'test')).rejects.toThrow(
          `"${name}" is not a version of service "svc"`,
        );
        await expect(writer.createRollout({ service: name, canary: 'v2', steps: [{ setWeight: 10 }] }, 'test')).rejects.toThrow(`service "${name}" not found`);
      }),
      { numRuns: PROTOTYPE_NAMES.length * 2 },
    );
  });

  it('work end to end as declared service and version names', async () => {
    const { cache, writer } = await world();
    for (const name of PROTOTYPE_NAMES) {
      const other = PROTOTYPE_NAMES.find((n) => n !== name)!;
      const spec = ServiceSchema.parse({ versions: { [name]: endpoint(1), [other]: endpoint(2) }, stable: name });
      await writer.putService(name, spec, 'test');
      const rollout = await writer.createRollout({ service: name, canary: other, steps: [{ setWeight: 30 }, { pause: {} }] }, 'test');
      expect(rollout.weights).toEqual({ [name]: 70, [other]: 30 });
      const clusters = [...cache.resources('grpc', TypeUrl.Cluster).keys()];
      expect(clusters).toEqual(expect.arrayContaining([`${name}-${name}`, `${name}-${other}`]));
      expect((await writer.rolloutEvent(name, { type: 'promote', full: true }, 'test')).phase).toBe('Promoted');
      expect(writer.state.services.get(name)!.stable).toBe(other);
    }
  });
});
