// The client-process driver used by the demo and the tests: a dead process fails its calls
// instead of leaving them pending forever (Ctrl-C reaches every process of the group).
import { describe, expect, it } from 'vitest';
import { spawnXdsClient } from '../../src/demo/xds-client.js';
import { freePort } from '../support/process.js';

describe('xds client process', () => {
  it('fails calls in flight, and later ones, when the process dies', async () => {
    // No xDS server on this port: calls wait for name resolution until their deadline.
    const client = await spawnXdsClient({ nodeId: 'doomed', xdsPort: await freePort() });
    const inFlight = client.call('echo', 1, { deadlineMs: 30_000 });
    await client.stop(); // the process exits with a call still unanswered
    await expect(inFlight).rejects.toThrow(/exited/);
    await expect(client.call('echo', 1)).rejects.toThrow(/not running/);
  });
});
