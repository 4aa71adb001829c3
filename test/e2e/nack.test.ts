// A real client's NACK, end to end: gRPC C-core refuses a RouteConfiguration whose header regex
// RE2 cannot compile. The REST API refuses such a regex, so the bad resource is put into the
// xDS cache directly — the situation a control-plane bug or a client quirk would create.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/demo/backend.js';
import { startBackend } from '../../src/demo/backend.js';
import type { XdsClient } from '../../src/demo/xds-client.js';
import { spawnPythonXdsClient } from '../../src/demo/xds-client.js';
import type { NamedService } from '../../src/model/service.js';
import { translateGrpc } from '../../src/translate/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { hasPythonGrpc } from '../support/python.js';
import type { TestSluice } from '../support/sluice.js';
import { eventually, serviceOf, startTestSluice } from '../support/sluice.js';

describe.runIf(hasPythonGrpc())('a C-core client that NACKs a route', () => {
  let sluice: TestSluice;
  let v1: Backend;
  let v2: Backend;
  let client: XdsClient;
  const rds = async () => (await sluice.api('GET', '/v1/fleet')).body.nodes[0].types[TypeUrl.RouteConfiguration];

  beforeAll(async () => {
    sluice = await startTestSluice();
    [v1, v2] = await Promise.all([startBackend({ version: 'v1' }), startBackend({ version: 'v2' })]);
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }))).status).toBe(201);
    client = await spawnPythonXdsClient({ nodeId: 'strict-re2', xdsPort: sluice.xdsPort });
    await eventually(async () => (await client.call('echo', 1)).versions.v1 === 1, 15_000, 100);
  });
  afterAll(async () => {
    await client?.stop();
    await Promise.all([v1?.stop(), v2?.stop()]);
    await sluice?.stop();
  });

  it('is recorded in the fleet; the client keeps its last good routes; the next good version is accepted', async () => {
    const service = (await sluice.api('GET', '/v1/services/echo')).body as NamedService;
    const bad = translateGrpc([
      {
        service,
        split: [{ version: 'v2', weight: 50 }, { version: 'v1', weight: 50 }],
        headerRoutes: [{ name: 'odd', match: [{ header: 'x-tag', regex: 'a\\Z' }], version: 'v2' }],
      },
    ])[TypeUrl.RouteConfiguration]!;
    sluice.xds.cache.set('grpc', { [TypeUrl.RouteConfiguration]: bad });

    const rejected = await eventually(async () => {
      const t = await rds();
      return t.lastNack ? t : undefined;
    });
    expect(rejected.lastNack.version).toBe(rejected.sentVersion);
    expect(rejected.lastNack.message).toMatch(/regex/i);
    expect(rejected.ackedVersion).not.toBe(rejected.sentVersion);
    const [state] = sluice.xds.ownerStatus('echo').streams;
    expect(state).toMatchObject({ node: 'strict-re2', state: 'rejected', message: expect.stringMatching(/regex/i) });
    // Its last accepted routes: 100% v1, not the split it refused.
    expect((await client.call('echo', 20)).versions).toEqual({ v1: 20 });

    // A good version (here: v2 becomes stable) is sent and accepted; the rejection stays on record.
    expect((await sluice.api('PUT', '/v1/services/echo', serviceOf({ v1: v1.port, v2: v2.port }, 'v2'))).status).toBe(200);
    await eventually(async () => (await client.call('echo', 10)).versions.v2 === 10, 5000, 20);
    const after = await rds();
    expect(after.ackedVersion).toBe(after.sentVersion);
    expect(after.lastNack.version).toBe(rejected.sentVersion);
  });
});
