// Envoy gets one socket listener whose routes come over RDS; each proxyless gRPC target
// (`xds:///echo`) gets an API listener named after the service.
import { packAny } from '../xds/protos.js';

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';

export interface EnvoyListenerOptions {
  /** Listener and RouteConfiguration name. */
  name: string;
  address: string;
  port: number;
}

export const DEFAULT_ENVOY_LISTENER: EnvoyListenerOptions = { name: 'sluice_http', address: '0.0.0.0', port: 10000 };

function routerFilter(name: string): object {
  return { name, typed_config: packAny(ROUTER, {}) };
}

export function apiListener(service: string): object {
  return {
    name: service,
    api_listener: {
      api_listener: packAny(HCM, {
        stat_prefix: service,
        rds: { route_config_name: service, config_source: ADS_SOURCE },
        http_filters: [routerFilter('router')],
      }),
    },
  };
}

/**
 * Scoped routes (SRDS): a route configuration per routing scope, the scope picked by the request's
 * host (`:authority` up to the first ':', so `web` and `web:10000` share the scope `web`). Both the
 * scopes and their route configurations come over ADS; over delta xDS a change to one service
 * sends only its own route configuration.
 */
export function scopedRoutes(name: string): object {
  return {
    scoped_routes: {
      name,
      scope_key_builder: { fragments: [{ header_value_extractor: { name: ':authority', element_separator: ':', index: 0 } }] },
      rds_config_source: ADS_SOURCE,
      scoped_rds: { scoped_rds_config_source: ADS_SOURCE },
    },
  };
}

/** The socket listener; its HTTP connection manager takes one route configuration over RDS
 *  (named like the listener), or scoped routes (`scopedRoutes`). */
export function socketListener(opts: EnvoyListenerOptions, routes: 'rds' | 'scoped' = 'rds'): object {
  const hcm = {
    stat_prefix: opts.name,
    codec_type: 'AUTO',
    ...(routes === 'scoped' ? scopedRoutes(opts.name) : { rds: { route_config_name: opts.name, config_source: ADS_SOURCE } }),
    http_filters: [routerFilter('envoy.filters.http.router')],
    access_log: [
      {
        name: 'envoy.access_loggers.stdout',
        typed_config: packAny('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', {}),
      },
    ],
  };
  return {
    name: opts.name,
    address: { socket_address: { address: opts.address, port_value: opts.port } },
    filter_chains: [
      { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny(HCM, hcm) }] },
    ],
  };
}
