// One EDS cluster and one ClusterLoadAssignment per version of a service.
import { clusterName } from '../model/service.js';
import type { NamedService, Version } from '../model/service.js';
import { encodeMessage, packAny, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { makeResource } from '../xds/resource.js';
import type { Flavour } from './routing.js';

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export function clusterResources(service: NamedService, flavour: Flavour): Resource[] {
  const out: Resource[] = [];
  for (const [version, spec] of Object.entries(service.versions)) {
    const name = clusterName(service.name, version, service);
    out.push(
      makeResource(TypeUrl.Cluster, name, encodeMessage('envoy.config.cluster.v3.Cluster', cluster(name, spec, flavour)), {
        [TypeUrl.ClusterLoadAssignment]: [name],
      }),
    );
  }
  return out;
}

export function loadAssignmentResources(service: NamedService): Resource[] {
  return Object.entries(service.versions).map(([version, spec]) => {
    const name = clusterName(service.name, version, service);
    return makeResource(
      TypeUrl.ClusterLoadAssignment,
      name,
      encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', loadAssignment(name, spec)),
    );
  });
}

function cluster(name: string, spec: Version, flavour: Flavour): object {
  const c: Record<string, unknown> = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: name },
    connect_timeout: { seconds: 1 },
    lb_policy: 'ROUND_ROBIN',
  };
  // Proxyless gRPC clients report per-cluster load (successes, errors) to the xDS server
  // itself: the data-plane telemetry that canary analysis reads.
  if (flavour === 'grpc') c.lrs_server = { self: {} };
  if (flavour === 'envoy' && (spec.protocol === 'http2' || spec.protocol === 'grpc')) {
    c.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': packAny(
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        { explicit_http_config: { http2_protocol_options: {} } },
      ),
    };
  }
  return c;
}

function loadAssignment(name: string, spec: Version): object {
  return {
    cluster_name: name,
    endpoints: [
      {
        // grpc-js NACKs an unset locality, and gRPC clients drop localities without a weight.
        locality: {},
        load_balancing_weight: { value: 1 },
        lb_endpoints: spec.endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          load_balancing_weight: { value: e.weight ?? 1 },
        })),
      },
    ],
  };
}
