import type { XdsClient } from '../../src/demo/xds-client.js';
import { eventually } from './sluice.js';

/**
 * Waits until calls with `metadata` reach `version`. An ACK says a client accepted the routes;
 * C-core hands them to new calls a moment later (its resolver passes the config to the channel
 * asynchronously, which takes tens of milliseconds on a loaded machine). Tests that assert exact
 * routing right after the fleet ACKed first wait for one call that can only land on the new
 * routes; a client that never applies them fails here.
 */
export async function routesApplied(client: XdsClient, target: string, metadata: Record<string, string>, version: string): Promise<void> {
  await eventually(async () => (await client.call(target, 1, { metadata })).versions[version] === 1, 5000, 10);
}
