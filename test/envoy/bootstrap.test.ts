// Every bootstrap in envoy/ loads into envoy.config.bootstrap.v3.Bootstrap strictly, the way
// Envoy would read it at start (Envoy cannot run here); and the validator is shown to catch
// the mistakes it exists for.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { encodeMessage, packAny } from '../../src/xds/protos.js';
import type { Json } from '../support/strict-decode.js';
import { checkJson, decodeStrict } from '../support/strict-decode.js';

type Obj = { [key: string]: Json };
const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const ENVOY_DIR = path.resolve(import.meta.dirname, '../../envoy');
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const files = fs.readdirSync(ENVOY_DIR).filter((f) => /\.ya?ml$/.test(f));
const load = (file: string) => parse(fs.readFileSync(path.join(ENVOY_DIR, file), 'utf8')) as Obj;
const at = (o: Json | undefined, ...keys: (string | number)[]): Json | undefined =>
  keys.reduce<Json | undefined>((v, k) => (v && typeof v === 'object' ? (v as Record<string | number, Json>)[k] : undefined), o);

describe('envoy/ bootstraps', () => {
  it('are the two ADS variants', () => {
    expect(files.sort()).toEqual(['bootstrap-ads.yaml', 'bootstrap-delta.yaml']);
  });

  it.each(files)('%s loads strictly into Bootstrap', (file) => {
    expect(checkJson(BOOTSTRAP, load(file))).toEqual([]);
  });

  it.each([
    ['bootstrap-ads.yaml', 'GRPC'],
    ['bootstrap-delta.yaml', 'DELTA_GRPC'],
  ])('%s streams CDS and LDS over %s ADS to the HTTP/2 cluster sluice_xds', (file, apiType) => {
    const b = load(file);
    const dyn = at(b, 'dynamic_resources');
    expect(at(dyn, 'ads_config')).toMatchObject({
      api_type: apiType,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: 'sluice_xds' } }],
    });
    for (const source of ['cds_config', 'lds_config']) expect(at(dyn, source), source).toEqual({ ads: {}, resource_api_version: 'V3' });
    // Node id and cluster come from --service-node/--service-cluster, never from the file.
    expect(b.node).toBeUndefined();

    const clusters = at(b, 'static_resources', 'clusters') as Obj[];
    expect(clusters.map((c) => c.name)).toEqual(['sluice_xds']);
    const xds = clusters[0]!;
    expect(xds.type).toBe('STRICT_DNS');
    expect(at(xds, 'load_assignment', 'endpoints', 0, 'lb_endpoints', 0, 'endpoint', 'address', 'socket_address')).toEqual({
      address: 'sluice',
      port_value: 18000,
    });
    const options = at(xds, 'typed_extension_protocol_options', HTTP_OPTIONS);
    expect(at(options, '@type')).toBe(`type.googleapis.com/${HTTP_OPTIONS}`);
    expect(at(options, 'explicit_http_config', 'http2_protocol_options')).toBeDefined();
    expect(at(b, 'admin', 'address', 'socket_address')).toEqual({ address: '0.0.0.0', port_value: 9901 });
  });

  it('differ only in the api_type line and comments', () => {
    const [ads, delta] = [load('bootstrap-ads.yaml'), load('bootstrap-delta.yaml')];
    (at(delta, 'dynamic_resources', 'ads_config') as Obj).api_type = 'GRPC';
    expect(delta).toEqual(ads);
  });
});

describe('the strict validator', () => {
  const bootstrap = () => load('bootstrap-ads.yaml');

  it('names a misspelled field with its path and the likely intended name', () => {
    const b = bootstrap();
    const ads = at(b, 'dynamic_resources', 'ads_config') as Obj;
    ads.grpc_servces = ads.grpc_services!;
    delete ads.grpc_services;
    expect(checkJson(BOOTSTRAP, b)).toEqual([
      'dynamic_resources.ads_config.grpc_servces: unknown field "grpc_servces" in envoy.config.core.v3.ApiConfigSource (did you mean "grpc_services"?)',
    ]);
  });

  it('refuses an @type that names no known message', () => {
    const b = bootstrap();
    const options = at(b, 'static_resources', 'clusters', 0, 'typed_extension_protocol_options', HTTP_OPTIONS) as Obj;
    options['@type'] = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOption';
    expect(checkJson(BOOTSTRAP, b)).toEqual([
      `static_resources.clusters[0].typed_extension_protocol_options["${HTTP_OPTIONS}"].@type: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOption" does not name a type of the proto registry (type.googleapis.com/<full name>)`,
    ]);
  });

  it('checks inside typed_config, enums and their deprecated values, oneofs and validate rules', () => {
    const b = bootstrap();
    const cluster = at(b, 'static_resources', 'clusters', 0) as Obj;
    (at(cluster, 'typed_extension_protocol_options', HTTP_OPTIONS, 'explicit_http_config') as Obj).http2_protocol_option = {};
    cluster.type = 'STRICT_DSN';
    (at(b, 'admin', 'address', 'socket_address') as Obj).port_value = 70000;
    (at(b, 'dynamic_resources', 'cds_config') as Obj).path = '/etc/cds.yaml';
    (at(b, 'dynamic_resources', 'ads_config') as Obj).transport_api_version = 'V2';
    const problems = checkJson(BOOTSTRAP, b);
    expect(problems).toContainEqual(expect.stringMatching(/explicit_http_config\.http2_protocol_option: unknown field/));
    expect(problems).toContainEqual(expect.stringMatching(/clusters\[0\]\.type: "STRICT_DSN" is not a value of enum/));
    expect(problems).toContainEqual('admin.address.socket_address.port_value: 70000 must be at most 65535');
    expect(problems).toContainEqual(expect.stringMatching(/cds_config: .*(path|ads) and (path|ads) are members of oneof/));
    expect(problems).toContainEqual('dynamic_resources.ads_config.transport_api_version: envoy.config.core.v3.ApiVersion.V2 is deprecated');
  });

  it('applies the checks Envoy makes at start: the ADS cluster must exist', () => {
    const b = bootstrap();
    (at(b, 'static_resources', 'clusters', 0) as Obj).name = 'xds';
    expect(checkJson(BOOTSTRAP, b)).toContainEqual(expect.stringMatching(/envoy_grpc\.cluster_name: unknown static cluster "sluice_xds"/));
  });

  it('finds unknown fields and unresolvable type URLs in bytes, which protobufjs skips silently', () => {
    const cluster = encodeMessage('envoy.config.cluster.v3.Cluster', { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });
    const unknownField = Buffer.concat([cluster, Buffer.from([0xb8, 0x3e, 0x01])]); // field 999, varint 1
    expect(decodeStrict('envoy.config.cluster.v3.Cluster', unknownField).problems).toEqual([
      '$: unknown field number 999 (wire type 0) in envoy.config.cluster.v3.Cluster',
    ]);
    const any = packAny('envoy.config.cluster.v3.Cluster', {});
    const badAny = encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', {
      type_url: 'x',
      resources: [{ ...any, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Clustr' }],
    });
    expect(decodeStrict('envoy.service.discovery.v3.DiscoveryResponse', badAny).problems).toContainEqual(
      'resources[0]: type_url "type.googleapis.com/envoy.config.cluster.v3.Clustr" is not a type of the proto registry',
    );
    // A Cluster without a name breaks a validate rule Envoy enforces on every resource.
    expect(decodeStrict('envoy.config.cluster.v3.Cluster', encodeMessage('envoy.config.cluster.v3.Cluster', {})).problems).toContain(
      'name: "" is shorter than 1 character(s)',
    );
  });
});
