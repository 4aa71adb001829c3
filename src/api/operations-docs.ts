// OpenAPI descriptions of the operational routes (probes, status, metrics, the page), kept here
// so the modules that serve them stay small.
import { z } from 'zod';
import { json, media } from './route-docs.js';
import { StatusSchema } from './schemas.js';

const tags = ['operations'];

export const healthzDoc = {
  operationId: 'getHealth',
  summary: 'The process is up',
  tags,
  response: { 200: json('up', z.object({ status: z.literal('ok') }), { status: 'ok' }) },
};

export const readyzDoc = {
  operationId: 'getReadiness',
  summary: 'Ready to take traffic: started, and everything pushed is stored',
  tags,
  response: {
    200: json('ready', z.object({ status: z.literal('ready') }), { status: 'ready' }),
    503: json('not ready, and why (starting, the store cannot be written, a rollback not persisted)', z.object({ status: z.literal('not_ready'), reason: z.string().optional() }), {
      status: 'not_ready',
      reason: 'rolled back but not persisted: echo',
    }),
  },
};

export const statusDoc = {
  operationId: 'getStatus',
  summary: 'Whether everything is persisted, what was quarantined at start-up, which services are not published as declared',
  tags,
  response: {
    200: json('status', StatusSchema, {
      persistence: { ok: true, store: { ok: true }, unpersisted: [] },
      quarantined: [],
      services: {},
    }),
  },
};

export const metricsDoc = {
  operationId: 'getMetrics',
  summary: "Sluice's own metrics (Prometheus text format)",
  description: 'Public with --metrics-public or when no tokens are configured. The metrics: docs/analysis.md.',
  tags,
  response: { 200: media('metrics', 'text/plain', z.string(), 'sluice_xds_connected_nodes 3\n') },
};

export const dashboardDoc = {
  operationId: 'getDashboard',
  summary: 'The dashboard (an HTML page; it holds no data and signs in to read the API)',
  tags,
  response: { 200: media('the page', 'text/html', z.string()) },
};

export const assetDoc = {
  operationId: 'getDashboardAsset',
  summary: "The dashboard's scripts and styles (served by Sluice itself: it works offline)",
  tags,
  params: z.strictObject({ file: z.string().max(64) }),
  response: { 200: media('the file', 'application/javascript', z.string()) },
};
