// One EDS cluster and one ClusterLoadAssignment per version of a service, owned by the service
// (the fleet tells a rollout which nodes hold its service by these owners).
import { clusterName } from '../model/service.js';
import type { NamedService, Version } from '../model/service.js';
import { encodeMessage, TypeUrl } from '../xds/protos.js';
import type { Resource } from '../xds/resource.js';
import { makeResource } from '../xds/resource.js';
import type { Dialect } from './dialect.js';

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export function clusterResources(service: NamedService, dialect: Dialect): Resource[] {
  const out: Resource[] = [];
  for (const [version, spec] of Object.entries(service.versions)) {
    const name = clusterName(service.name, version, service);
    out.push(
      makeResource(
        TypeUrl.Cluster,
        name,
        encodeMessage('envoy.config.cluster.v3.Cluster', { ...cluster(name), ...dialect.clusterExtras(spec) }),
        { [TypeUrl.ClusterLoadAssignment]: [name] },
        [service.name],
      ),
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
      {},
      [service.name],
    );
  });
}

function cluster(name: string): object {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: name },
    connect_timeout: { seconds: 1 },
    lb_policy: 'ROUND_ROBIN',
  };
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
