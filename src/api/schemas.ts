// The zod schemas of what the API answers (requests are validated by the model's schemas), and
// the registry that names the schemas the OpenAPI document shows as components. Routes put
// these in their `schema.response`; openapi.ts renders them. Answers are not re-validated on
// the way out: test/api/openapi.test.ts checks real answers against these schemas instead.
import { z } from 'zod';
import type { RolloutState } from '../model/rollout.js';
import {
  AnalysisMetricSchema,
  AnalysisSchema,
  HeaderRouteSchema,
  MatcherSchema,
  RolloutSpecSchema,
  StepSchema,
  StickySchema,
} from '../model/rollout.js';
import { EndpointSchema, NameSchema, RetriesSchema, ServiceSchema, VersionSchema } from '../model/service.js';

/** Schemas shown once under components/schemas and referenced by name: the ones with an id
 *  in zod's global registry, which also holds every `.describe()` text. */
export const components = z.globalRegistry;

/**
 * "Exactly one of these keys" rules the model checks in a refinement (so its errors name the
 * field at fault), which JSON Schema cannot read from the code: each entry becomes `oneOf`
 * (two groups: `allOf` of two `oneOf`s) in the document. Keyed by the object inside each
 * model schema (the part before its `.transform`).
 */
export const EXACTLY_ONE = new Map<unknown, readonly (readonly string[])[]>([
  [innerObject(MatcherSchema), [['header', 'cookie', 'query'], ['exact', 'prefix', 'suffix', 'contains', 'regex', 'present']]],
  [innerObject(StepSchema), [['setWeight', 'pause', 'analysis']]],
  [innerObject(AnalysisMetricSchema), [['successRate', 'latencyP99', 'successRateDrop', 'latencyRise', 'prometheus']]],
  [innerObject(StickySchema), [['header', 'cookie', 'bucketHeader']]],
]);

function innerObject(schema: z.ZodType): unknown {
  const def = schema._zod.def as { type: string; in?: z.ZodType };
  return def.type === 'pipe' && def.in ? def.in : schema;
}

const isoTime = z.string().meta({ format: 'date-time' });
const Weights = z.record(z.string(), z.int().min(0).max(100)).describe('percent of traffic per version, e.g. {"v1": 90, "v2": 10}');

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .describe(
          'invalid_argument (400, 413), unauthenticated (401), permission_denied or forbidden (403), not_found (404), conflict or failed_precondition (409), unsupported_media_type (415), unavailable (503), not_persisted (507), internal (500)',
        ),
      message: z.string().describe('what went wrong, naming the fields at fault'),
      details: z.array(z.object({ field: z.string().describe('path of the field, e.g. steps[2].setWeight, path.service, query.timeout, (body)'), message: z.string() })),
    }),
    rollout: z.unknown().optional().describe('507 only: the rollout as pushed to the fleet (a Rollout)'),
    fleet: z.unknown().optional().describe('507 with ?wait=ack only: the fleet report (a FleetReport)'),
  })
  .describe('Every error answer has this shape.');

const PublishStatus = z.object({
  published: z.boolean().describe('false: the declaration could not be translated or clashes; the last good resources (or none) are served'),
  problem: z.string().optional(),
});

export const ServiceViewSchema = ServiceSchema.safeExtend({
  name: NameSchema,
  status: PublishStatus,
}).describe('A service as declared, with its name and whether it is published as declared.');

const HistoryEntrySchema = z.object({
  at: isoTime,
  event: z.string().describe('Created, WeightSet, StepCompleted, PauseStarted, Paused, PausedByUser, Resumed, Promoted, RolledBack, FleetRejected, AnalysisStarted, AnalysisFailed, AnalysisInconclusive, PausedByAnalysis, AnalysisCompleted'),
  weights: Weights,
  by: z.string().describe('the token name (alice (for bob)), api, or schedule / fleet / analysis for Sluice itself'),
  reason: z.string(),
  step: z.int().optional(),
});

const MeasurementPhaseSchema = z.enum(['Successful', 'Failed', 'Inconclusive']);
const MeasurementSchema = z.object({
  run: z.string().describe('"background" or "step <i>"'),
  from: isoTime,
  to: isoTime,
  phase: MeasurementPhaseSchema,
  requests: z.record(z.string(), z.int()).describe('requests per version the data plane reported in the window'),
  versions: z
    .record(
      z.string(),
      z.object({
        successRate: z.number().nullable().describe('successful requests ÷ requests (0-1); null without requests'),
        latencyP99Ms: z.number().nullable().describe("99th percentile latency in ms; null without latency reports (Envoy's metrics service sends them)"),
      }),
    )
    .optional()
    .describe('what each version showed in the window, whatever the metrics ask (the verdict is in metrics)'),
  mirrorPercent: z.number().optional().describe('while Envoy nodes mirrored this share to the canary: its requests include those copies'),
  metrics: z.array(
    z.object({
      name: z.string(),
      phase: MeasurementPhaseSchema,
      value: z.number().nullable().describe('a ratio (0-1) for success rates, milliseconds for latencies, the query value for prometheus; null when inconclusive'),
      message: z.string(),
    }),
  ),
});

export const RolloutViewSchema = z
  .object({
    id: z.string(),
    spec: RolloutSpecSchema,
    service: NameSchema,
    stable: NameSchema,
    canary: NameSchema,
    phase: z.enum(['Progressing', 'Paused', 'Promoted', 'RolledBack']),
    step: z.int().min(0).describe('index of the current step; equals the number of steps when all are done'),
    canaryWeight: z.int().min(0).max(100),
    weights: Weights,
    headerRoutesActive: z.boolean(),
    mirrorPercent: z.number().min(0).max(100).optional().describe('share of requests Envoy nodes copy to the canary (shadow traffic); 0 or absent: none'),
    awaitingAck: z
      .object({ canaryWeight: z.int(), mirrorPercent: z.number().optional(), since: isoTime })
      .nullable()
      .describe('a weight or mirror step waiting for the service\'s nodes to ACK'),
    pauseUntil: isoTime.nullable(),
    pausedBy: z.enum(['step', 'user', 'analysis', 'fleet']).nullable(),
    pauseRemainingMs: z.number().nullable(),
    lastAckAt: isoTime.nullable(),
    lastAckNodes: z.int().nullable().optional().describe('nodes of the service that ACKed the current routing (0: none was connected)'),
    lastAckEnvoyNodes: z.int().nullable().optional().describe('how many of them are Envoys, the only nodes that mirror'),
    createdAt: isoTime,
    updatedAt: isoTime,
    history: z.array(HistoryEntrySchema).describe('the newest 200 transitions, oldest first'),
    historyDropped: z.int().optional(),
    analysis: z
      .object({
        runs: z.array(
          z.object({ run: z.string(), startedAt: isoTime, nextAt: isoTime, successful: z.int(), failed: z.int(), inconclusive: z.int() }),
        ),
        measurements: z.array(MeasurementSchema).describe('the most recent measurements, oldest first'),
      })
      .optional(),
  })
  .describe('A rollout: its spec and where it stands.');

// The schema documents the state the code keeps: a field added to RolloutState and not here
// fails to compile.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _rolloutDocumented: Exact<keyof z.output<typeof RolloutViewSchema>, keyof RolloutState> = true;
void _rolloutDocumented;

const NodeConvergenceSchema = z.object({
  node: z.string(),
  stream: z.int(),
  state: z.enum(['acked', 'pending', 'rejected', 'disconnected']),
  ms: z.number().nullable().describe('from the REST call to the node\'s answer'),
  message: z.string().optional(),
});

export const FleetReportSchema = z
  .object({
    acknowledged: z.boolean().describe('every node of the service ACKed (or left) in time'),
    nodeCount: z.int(),
    pushedMs: z.int(),
    elapsedMs: z.int(),
    nodes: z.array(NodeConvergenceSchema),
  })
  .describe('With ?wait=ack: what each node of the service did with the rollback.');

export const RollbackResultSchema = RolloutViewSchema.extend({ fleet: FleetReportSchema.optional() }).describe(
  'The rollout after the rollback; with ?wait=ack also the fleet report.',
);

const TypeStatusSchema = z.object({
  subscription: z.union([z.literal('*'), z.array(z.string())]),
  sentVersion: z.string().nullable(),
  sentAt: isoTime.nullable(),
  ackedVersion: z.string().nullable(),
  ackedAt: isoTime.nullable(),
  lastNack: z.object({ version: z.string(), message: z.string(), at: isoTime }).nullable(),
});

export const NodeStatusSchema = z.object({
  id: z.string(),
  cluster: z.string(),
  userAgent: z.string(),
  group: z.string().describe('the cache group the node is served from (its kind of client and the services it asked for)'),
  clientFeatures: z.array(z.string()),
  connectedSince: isoTime,
  streams: z.array(z.object({ id: z.int(), flavour: z.enum(['sotw', 'delta']), connectedSince: isoTime })),
  types: z.record(z.string(), TypeStatusSchema).describe('by type URL'),
  replica: z.string().optional().describe('the Sluice replica the node is connected to'),
});

export const FleetListSchema = z.object({
  nodes: z.array(NodeStatusSchema),
  replicas: z
    .array(z.object({ id: z.string(), nodes: z.int(), nodesTruncated: z.int().optional() }))
    .optional()
    .describe('every live replica and how many nodes are connected to it'),
  total: z.int().optional().describe('with a query: the nodes matching it (the page holds at most limit of them)'),
  offset: z.int().optional().describe('with a query: the nodes skipped'),
  limit: z.int().optional().describe('with a query: the page size asked for'),
});

const SyncCounts = z.object({
  synced: z.int().describe('the last version sent is ACKed'),
  stale: z.int().describe('sent, not ACKed yet'),
  nacked: z.int().describe('the last version sent was rejected'),
  notSent: z.int().describe('subscribed, nothing sent yet'),
});

export const FleetSummarySchema = z
  .object({
    nodes: z.int(),
    streams: z.int(),
    byState: z.object({ synced: z.int(), stale: z.int(), nacked: z.int() }).describe('nodes by their worst type: nacked, else stale, else synced'),
    byType: z.object({ LDS: SyncCounts, RDS: SyncCounts, CDS: SyncCounts, EDS: SyncCounts }).describe('nodes per xDS type and state'),
    byUserAgent: z.record(z.string(), z.int()).describe('nodes per user agent name (at most 20 names; the rest count as "other")'),
    at: isoTime,
  })
  .describe('Counts only: as cheap to send at 10,000 nodes as at 10.');

export const StatusSchema = z.object({
  persistence: z.object({
    ok: z.boolean(),
    store: z.object({ ok: z.boolean(), message: z.string().optional() }),
    unpersisted: z.array(z.string()).describe('services with a change pushed but not stored yet'),
  }),
  quarantined: z.array(z.object({ key: z.string(), file: z.string(), movedTo: z.string().optional(), reason: z.string(), at: z.string().optional() }).loose()),
  services: z.record(z.string(), PublishStatus),
  replicas: z
    .object({
      self: z.string(),
      leader: z.string().nullable(),
      replicas: z.array(z.object({ id: z.string(), leader: z.boolean(), nodes: z.int(), applied: z.int(), startedAt: isoTime, seenAt: isoTime })),
    })
    .optional()
    .describe('this replica, the leader (it schedules steps and analysis), and every live replica'),
});

export const SessionSchema = z.object({
  name: z.string(),
  role: z.enum(['viewer', 'operator', 'admin']),
  via: z.enum(['token', 'session', 'open']).optional(),
  tokens: z.boolean().optional().describe('whether the server has tokens configured'),
  expiresAt: isoTime.optional(),
});

components.add(ServiceSchema, { id: 'Service', description: 'A service and its versions (the body of PUT /v1/services/{service}).' });
components.add(VersionSchema, { id: 'Version' });
components.add(EndpointSchema, { id: 'Endpoint' });
components.add(RetriesSchema, { id: 'Retries' });
components.add(ServiceViewSchema, { id: 'ServiceView' });
components.add(RolloutSpecSchema, { id: 'RolloutSpec', description: 'The body of POST /v1/rollouts.' });
components.add(StepSchema, { id: 'Step', description: 'Exactly one of setWeight, pause, analysis, setMirror.' });
components.add(AnalysisSchema, { id: 'Analysis' });
components.add(AnalysisMetricSchema, { id: 'AnalysisMetric', description: 'A name and exactly one kind of measurement.' });
components.add(HeaderRouteSchema, { id: 'HeaderRoute' });
components.add(MatcherSchema, { id: 'Matcher', description: 'Exactly one of header, cookie, query and exactly one of exact, prefix, suffix, contains, regex, present.' });
components.add(StickySchema, { id: 'Sticky', description: 'Exactly one of header, cookie, bucketHeader.' });
components.add(RolloutViewSchema, { id: 'Rollout' });
components.add(HistoryEntrySchema, { id: 'HistoryEntry' });
components.add(MeasurementSchema, { id: 'Measurement' });
components.add(FleetReportSchema, { id: 'FleetReport' });
components.add(RollbackResultSchema, { id: 'RollbackResult' });
components.add(NodeStatusSchema, { id: 'NodeStatus' });
components.add(FleetListSchema, { id: 'FleetList' });
components.add(FleetSummarySchema, { id: 'FleetSummary' });
components.add(StatusSchema, { id: 'Status' });
components.add(SessionSchema, { id: 'Session' });
components.add(ErrorSchema, { id: 'Error' });
