// Who may call what: the one table that maps every route to the role it needs. app.ts refuses
// to register a route that is missing here, and README "Securing Sluice" quotes this table.

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** `public`: no token needed (the route authenticates itself, or holds nothing to protect). */
export type Access = Role | 'public';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Whether `have` may do what needs `need`. */
export function allows(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

/** "METHOD /path" (Fastify's pattern) → the role it needs. HEAD goes with GET. */
export const ROUTE_ROLES: Readonly<Record<string, Access>> = {
  'GET /': 'public', // the dashboard page: no data, it signs in and then reads the API
  'GET /assets/:file': 'public', // the page's scripts and styles (uPlot, vendored)
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /openapi.json': 'public',
  'GET /metrics': 'viewer', // public with --metrics-public
  'POST /v1/session': 'public', // checks the token in its body
  'GET /v1/session': 'viewer',
  'DELETE /v1/session': 'public', // signs out whatever session the cookie names
  'GET /v1/services': 'viewer',
  'GET /v1/services/:service': 'viewer',
  'PUT /v1/services/:service': 'admin',
  'DELETE /v1/services/:service': 'admin',
  'GET /v1/rollouts': 'viewer',
  'POST /v1/rollouts': 'operator',
  'GET /v1/rollouts/:service': 'viewer',
  'DELETE /v1/rollouts/:service': 'operator', // only a finished rollout (409 otherwise)
  'GET /v1/rollouts/:service/history': 'viewer',
  'POST /v1/rollouts/:service/promote': 'operator',
  'POST /v1/rollouts/:service/pause': 'operator',
  'POST /v1/rollouts/:service/resume': 'operator',
  'POST /v1/rollouts/:service/rollback': 'operator',
  'GET /v1/fleet': 'viewer',
  'GET /v1/fleet/summary': 'viewer',
  'GET /v1/status': 'viewer',
  'GET /v1/events': 'viewer',
};

/** What a request for no route at all needs: as much as the least protected data route. */
export const UNKNOWN_ROUTE: Access = 'viewer';

export function routeKey(method: string, url: string): string {
  return `${method === 'HEAD' ? 'GET' : method} ${url}`;
}

/** The table as this server applies it. */
export function routeRoles(opts: { metricsPublic: boolean }): ReadonlyMap<string, Access> {
  const table = new Map(Object.entries(ROUTE_ROLES));
  if (opts.metricsPublic) table.set('GET /metrics', 'public');
  return table;
}
