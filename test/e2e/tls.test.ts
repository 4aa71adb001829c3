// The xDS port over TLS and mutual TLS, with certificates made by openssl for the test (identity,
// policy and rotation: test/security).
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageType, TypeUrl } from '../../src/xds/protos.js';
import type { TestCerts } from '../support/certs.js';
import { makeCerts } from '../support/certs.js';
import type { TestSluice } from '../support/sluice.js';
import { startTestSluice, tempDir } from '../support/sluice.js';

const Request = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const Response = messageType('envoy.service.discovery.v3.DiscoveryResponse');

/** Opens ADS with the given credentials and resolves with the first response's type URL. */
function firstResponse(port: number, creds: grpc.ChannelCredentials): Promise<string> {
  const client = new grpc.Client(`localhost:${port}`, creds);
  return new Promise<string>((resolve, reject) => {
    const call = client.makeBidiStreamRequest(
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      (v: object) => Buffer.from(Request.encode(Request.fromObject(v)).finish()),
      (b: Buffer) => Response.toObject(Response.decode(b)) as { type_url: string },
    );
    call.on('data', (r: { type_url: string }) => {
      resolve(r.type_url);
      call.cancel();
    });
    call.on('error', (err) => reject(err));
    call.write({ node: { id: 'tls-node', user_agent_name: 'test' }, type_url: TypeUrl.Cluster, resource_names: [] });
  }).finally(() => client.close());
}

describe('xDS over mutual TLS', () => {
  let certs: TestCerts;
  let sluice: TestSluice;

  beforeAll(async () => {
    certs = makeCerts(tempDir('sluice-tls-'));
    sluice = await startTestSluice({
      xdsTlsCert: certs.files.serverCert,
      xdsTlsKey: certs.files.serverKey,
      xdsTlsCa: certs.files.ca,
    });
  });
  afterAll(async () => sluice?.stop());

  it('serves a client that presents a certificate the CA signed', async () => {
    const creds = grpc.credentials.createSsl(certs.ca, certs.clientKey, certs.clientCert);
    expect(await firstResponse(sluice.xdsPort, creds)).toBe(TypeUrl.Cluster);
  });

  it('refuses a client without a certificate, and a plaintext client', async () => {
    await expect(firstResponse(sluice.xdsPort, grpc.credentials.createSsl(certs.ca))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(firstResponse(sluice.xdsPort, grpc.credentials.createInsecure())).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });
});
