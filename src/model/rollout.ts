// The rollout spec (body of POST /v1/rollouts) and the live rollout state.
// Schemas are strict (unknown fields are errors, so typos do not silently do nothing), and
// "exactly one of" choices are checked with a refinement on a strict object rather than a
// zod union: that way an error points at the offending field (['steps', 2, 'setWeight'])
// instead of a vague union failure on the whole step.
import re2 from 're2-wasm';
import { z } from 'zod';
import { durationString, parseDuration } from './duration.js';

/** Exactly one key of T is set; the others are absent. */
type OneOf<T> = { [K in keyof T]: Pick<T, K> & { [O in Exclude<keyof T, K>]?: undefined } }[keyof T];

/** Adds the "exactly one of `keys`" check to a strict object whose keys are all optional. */
function exactlyOne(keys: readonly string[], what: string) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => value[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `${what} needs exactly one of ${keys.join(', ')}${set.length ? ` (got ${set.join(', ')})` : ''}` });
    }
  };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** RFC 9110 token: what a header (or cookie) name may be made of. */
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

const Name = z.string().regex(NAME, 'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit');
const HeaderName = z.string().regex(TOKEN, 'must be a valid header name');
const CookieName = z.string().regex(TOKEN, 'must be a valid cookie name');

const { RE2 } = re2;

/**
 * A header regex must compile in RE2 (Envoy and gRPC C-core use it) and in JavaScript (grpc-js
 * does): e.g. lookarounds and `\Z` are not RE2, inline flags like `(?i)` are not JavaScript.
 */
const Regex = z.string().min(1).max(1024).superRefine((source, ctx) => {
  for (const [engine, compile] of [
    ['JavaScript', (p: string) => new RegExp(p)],
    ['RE2', (p: string) => new RE2(p, 'u')],
  ] as const) {
    try {
      compile(source);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a valid ${engine} regular expression: ${(err as Error).message}` });
      return;
    }
  }
});

const MATCH_ON = ['header', 'cookie', 'query'] as const;
const MATCH_BY = ['exact', 'prefix', 'suffix', 'contains', 'regex', 'present'] as const;

export type Matcher = OneOf<{ header: string; cookie: string; query: string }> &
  OneOf<{ exact: string; prefix: string; suffix: string; contains: string; regex: string; present: true }> & { invert?: boolean };

export const MatcherSchema = z
  .strictObject({
    header: HeaderName.optional(),
    cookie: CookieName.optional(),
    query: z.string().min(1).max(256).optional(),
    exact: z.string().optional(),
    prefix: z.string().min(1).optional(),
    suffix: z.string().min(1).optional(),
    contains: z.string().min(1).optional(),
    regex: Regex.optional(),
    present: z.literal(true).optional(),
    invert: z.boolean().optional(),
  })
  .superRefine(exactlyOne(MATCH_ON, 'a matcher'))
  .superRefine(exactlyOne(MATCH_BY, 'a matcher'))
  .superRefine((m, ctx) => {
    // Envoy's query parameter matcher cannot be inverted.
    if (m.query !== undefined && m.invert)
      ctx.addIssue({ code: 'custom', path: ['invert'], message: 'query matchers cannot be inverted' });
  })
  // zod infers every key optional; after the checks above the value has the sharper type.
  .transform((m) => m as Matcher);

export const HeaderRouteSchema = z.strictObject({
  name: Name,
  match: z.array(MatcherSchema).min(1).max(10),
});
export type HeaderRoute = z.output<typeof HeaderRouteSchema>;

// Analysis: measurements of the canary taken every `interval` (docs/api.md "Analysis", docs/analysis.md).
export type AnalysisMetric = { name: string } & OneOf<{
  successRate: { min: number };
  latencyP99: { maxMs: number };
  successRateDrop: { max: number };
  latencyRise: { maxMs: number };
  prometheus: { provider: string; query: string; min?: number; max?: number };
}>;
const METRIC_KINDS = ['successRate', 'latencyP99', 'successRateDrop', 'latencyRise', 'prometheus'] as const;
const Ratio = z.number().min(0).max(1);
const Millis = z.number().min(0).max(3_600_000);

/** The server fetches only endpoints its operator configured (`--prometheus NAME=URL`); a spec
 *  names one. The old `address` field is refused with an explanation, not as an unknown key. */
const PrometheusMetricSchema = z.preprocess(
  (v, ctx) => {
    if (typeof v !== 'object' || v === null || !('address' in v)) return v;
    ctx.addIssue({
      code: 'custom',
      path: ['address'],
      message: 'is no longer accepted: Prometheus endpoints are configured on the server (--prometheus NAME=URL); name one with "provider": "NAME"',
    });
    const { address: _gone, ...rest } = v as Record<string, unknown>;
    return rest;
  },
  z
    .strictObject({
      provider: Name,
      query: z.string().min(1).max(4096),
      min: z.number().optional(),
      max: z.number().optional(),
    })
    .refine((p) => p.min !== undefined || p.max !== undefined, 'a prometheus metric needs min, max or both'),
);

export const AnalysisMetricSchema = z
  .strictObject({
    name: Name,
    successRate: z.strictObject({ min: Ratio }).optional(),
    latencyP99: z.strictObject({ maxMs: Millis }).optional(),
    successRateDrop: z.strictObject({ max: Ratio }).optional(),
    latencyRise: z.strictObject({ maxMs: Millis }).optional(),
    prometheus: PrometheusMetricSchema.optional(),
  })
  .superRefine(exactlyOne(METRIC_KINDS, 'a metric'))
  .transform((m) => m as AnalysisMetric);

export const AnalysisSchema = z.strictObject({
  // Windows shorter than a second hold less than one load report per node.
  interval: durationString('15m').refine((d) => parseDuration(d) >= 1000, 'must be at least 1s'),
  /** Background: stop after this many measurements (default: run to the end). Step: successes needed (default 1). */
  count: z.int().min(1).max(10_000).optional(),
  /** Failed measurements tolerated (default 0); one more rolls back. */
  failureLimit: z.int().min(0).max(1000).optional(),
  /** Inconclusive measurements tolerated (default 0); one more pauses for a human. */
  inconclusiveLimit: z.int().min(0).max(1000).optional(),
  /** Canary requests a window needs to be judged by built-in metrics (default 20). */
  minRequests: z.int().min(1).max(1_000_000_000).optional(),
  metrics: z
    .array(AnalysisMetricSchema)
    .min(1)
    .max(20)
    .superRefine((metrics, ctx) => {
      const seen = new Set<string>();
      metrics.forEach((m, i) => {
        if (seen.has(m.name)) ctx.addIssue({ code: 'custom', message: `duplicate metric name "${m.name}"`, path: [i, 'name'] });
        seen.add(m.name);
      });
    }),
});
export type AnalysisSpec = z.output<typeof AnalysisSchema>;

export type Step = OneOf<{ setWeight: number; pause: { duration?: string }; analysis: AnalysisSpec; setMirror: { percent: number } }>;

/** A share of traffic in percent with at most two decimals (Envoy gets it as a fraction of
 *  10,000: 12.5 % is 1250/10000). */
const MirrorPercent = z
  .number()
  .min(0)
  .max(100)
  .refine((p) => Math.abs(p * 100 - Math.round(p * 100)) < 1e-9, 'must have at most 2 decimals');

export const StepSchema = z
  .strictObject({
    setWeight: z.int().min(0).max(100).optional(),
    pause: z.strictObject({ duration: durationString('168h').optional() }).optional(),
    analysis: AnalysisSchema.optional(),
    /** Envoy nodes copy this share of the service's requests to the canary and discard its
     *  answers (shadow traffic); 0 stops it. Until changed, or the rollout ends. */
    setMirror: z.strictObject({ percent: MirrorPercent }).optional(),
  })
  .superRefine(exactlyOne(['setWeight', 'pause', 'analysis', 'setMirror'], 'a step'))
  .transform((s) => s as Step);

/** Keeps a user on one version while the weights move: Envoy's hash policy on a header or
 *  cookie (`header`, `cookie`: Envoy 1.36+ only), or a bucket the caller computes from the user
 *  id and sends in `bucketHeader` (every client; docs/sticky.md). */
export type Sticky =
  | (OneOf<{ header: string; cookie: string }> & { bucketHeader?: undefined; buckets?: undefined })
  | { bucketHeader: string; buckets: number; header?: undefined; cookie?: undefined };

export const DEFAULT_BUCKETS = 100;

/**
 * A bucket header is matched by proxyless gRPC clients too, which never match binary metadata
 * (`-bin`) and keep `grpc-` names for gRPC itself.
 */
const BucketHeaderName = HeaderName.refine((h) => !h.toLowerCase().endsWith('-bin'), 'must not end in "-bin" (gRPC never matches binary metadata)').refine(
  (h) => !h.toLowerCase().startsWith('grpc-'),
  'must not start with "grpc-" (reserved for gRPC itself)',
);

export const StickySchema = z
  .strictObject({
    header: HeaderName.optional(),
    cookie: CookieName.optional(),
    bucketHeader: BucketHeaderName.optional(),
    buckets: z.int().min(1).max(10_000).optional(),
  })
  .superRefine(exactlyOne(['header', 'cookie', 'bucketHeader'], 'sticky'))
  .superRefine((s, ctx) => {
    if (s.buckets !== undefined && s.bucketHeader === undefined)
      ctx.addIssue({ code: 'custom', path: ['buckets'], message: 'buckets is allowed only with bucketHeader' });
  })
  .transform((s) => (s.bucketHeader !== undefined ? { bucketHeader: s.bucketHeader, buckets: s.buckets ?? DEFAULT_BUCKETS } : s) as Sticky);

export const RolloutSpecSchema = z.strictObject({
  service: Name,
  canary: Name,
  steps: z.array(StepSchema).min(1).max(100),
  headerRoutes: z
    .array(HeaderRouteSchema)
    .max(20)
    .superRefine((routes, ctx) => {
      const seen = new Set<string>();
      routes.forEach((r, i) => {
        if (seen.has(r.name)) ctx.addIssue({ code: 'custom', message: `duplicate header route name "${r.name}"`, path: [i, 'name'] });
        seen.add(r.name);
      });
    })
    .optional(),
  sticky: StickySchema.optional(),
  /** Runs for the whole rollout, from its creation. */
  analysis: AnalysisSchema.optional(),
  /** A weight step counts as reached only once this many nodes of the service ACKed it
   *  (default: no minimum; a step reached with zero nodes is flagged in status and history). */
  minNodes: z.int().min(1).max(1_000_000).optional(),
});
export type RolloutSpec = z.output<typeof RolloutSpecSchema>;

export type Phase = 'Progressing' | 'Paused' | 'Promoted' | 'RolledBack';

export interface HistoryEntry {
  at: string; // ISO time
  event: string;
  weights: Record<string, number>;
  by: string;
  reason: string;
  step?: number;
}

export type MeasurementPhase = 'Successful' | 'Failed' | 'Inconclusive';

/** One metric judged over one window. */
export interface MetricResult {
  name: string;
  phase: MeasurementPhase;
  /** The measured value (ratio, ms, or the query's value); null when there was nothing to measure. */
  value: number | null;
  /** Human-readable: the value against its threshold, or why it is inconclusive. */
  message: string;
}

/** One version's traffic in a window, as the data plane reported it. */
export interface VersionObserved {
  /** Successful requests ÷ requests (0–1); null without requests. */
  successRate: number | null;
  /** 99th percentile latency in ms; null without latency reports (only Envoy's metrics service sends them). */
  latencyP99Ms: number | null;
}

/** All metrics of one analysis run judged over one window: Failed if any failed, else
 *  Inconclusive if any was, else Successful. */
export interface Measurement {
  run: string;
  from: string;
  to: string;
  phase: MeasurementPhase;
  /** Canary (and stable) requests the data plane reported in the window. */
  requests: Record<string, number>;
  /** What each version showed in the window, whatever the metrics ask (for charts and people;
   *  the verdict is in `metrics`). Absent in measurements stored before it existed. */
  versions?: Record<string, VersionObserved>;
  /** Present while Envoy nodes mirror traffic to the canary: its requests include those copies. */
  mirrorPercent?: number;
  metrics: MetricResult[];
}

/** An analysis in progress: the rollout's background one, or the current analysis step's. */
export interface AnalysisRun {
  /** 'background' or 'step <i>'. */
  run: string;
  startedAt: string;
  /** When the next window closes and is measured. */
  nextAt: string;
  successful: number;
  failed: number;
  /** Since the start, or since a human resumed after an inconclusive pause. */
  inconclusive: number;
}

export interface AnalysisState {
  runs: AnalysisRun[];
  /** The most recent measurements (bounded); failures and inconclusive ones are in history too. */
  measurements: Measurement[];
}

/** Live state of one rollout; plain JSON, stored as-is. Only rollout/machine.ts changes it. */
export interface RolloutState {
  id: string;
  spec: RolloutSpec;
  service: string;
  stable: string;
  canary: string;
  phase: Phase;
  /** Index of the current step; === spec.steps.length when all are done. */
  step: number;
  /** 0..100, the weight currently routed (what translate must push). */
  canaryWeight: number;
  /** { [stable]: 100 - canaryWeight, [canary]: canaryWeight }; after promotion { [canary]: 100 }. */
  weights: Record<string, number>;
  /** false after rollback or promotion. */
  headerRoutesActive: boolean;
  /** Share (0..100) of the service's requests Envoy nodes copy to the canary, whose answers
   *  they discard (shadow traffic); 0 when none. Set by setMirror steps, 0 once the rollout ends.
   *  Absent in rollouts stored before mirroring existed (read as 0). */
  mirrorPercent?: number;
  /** A setWeight or setMirror step waits for the fleet to ACK the routes that carry this weight
   *  (and mirror share, present when not 0) before the step counts as done. */
  awaitingAck: { canaryWeight: number; mirrorPercent?: number; since: string } | null;
  /** Timed pause in force: absolute deadline (survives restarts: the pause resumes with the time it had left). */
  pauseUntil: string | null;
  /** Why we are Paused: 'step' (pause without duration), 'user' (pause action), 'analysis'
   *  (too many inconclusive measurements), or null. */
  pausedBy: 'step' | 'user' | 'analysis' | 'fleet' | null;
  /** When a user pauses during a timed pause, the ms that were left; resume restores it. */
  pauseRemainingMs: number | null;
  /** When the fleet first ACKed the current routing, weight and mirror share (null until it
   *  has, reset when either changes). */
  lastAckAt: string | null;
  /** Nodes of the service that ACKed the current routing (set with lastAckAt). */
  lastAckNodes?: number | null;
  /** How many of those are Envoys, the only nodes that mirror (null when unknown). */
  lastAckEnvoyNodes?: number | null;
  createdAt: string;
  updatedAt: string;
  /** The most recent transitions (at most MAX_HISTORY); older ones are dropped and counted. */
  history: HistoryEntry[];
  historyDropped?: number;
  /** Present when the spec has analysis (background or steps); absent in older stored rollouts. */
  analysis?: AnalysisState;
}

/** A stored rollout as read back: the fields every reader relies on, checked before use so a
 *  damaged file is quarantined instead of breaking the process (extra fields are kept). */
const isoTime = z.iso.datetime();
export const RolloutStateSchema = z.looseObject({
  id: z.string().min(1),
  spec: RolloutSpecSchema,
  service: Name,
  stable: Name,
  canary: Name,
  phase: z.enum(['Progressing', 'Paused', 'Promoted', 'RolledBack']),
  step: z.int().min(0),
  canaryWeight: z.int().min(0).max(100),
  weights: z.record(z.string(), z.number()),
  headerRoutesActive: z.boolean(),
  mirrorPercent: z.number().min(0).max(100).optional(),
  awaitingAck: z.strictObject({ canaryWeight: z.int().min(0).max(100), mirrorPercent: z.number().min(0).max(100).optional(), since: isoTime }).nullable(),
  pauseUntil: isoTime.nullable(),
  pausedBy: z.enum(['step', 'user', 'analysis', 'fleet']).nullable(),
  pauseRemainingMs: z.number().min(0).nullable(),
  lastAckAt: isoTime.nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
  history: z.array(z.looseObject({ at: z.string(), event: z.string(), by: z.string(), reason: z.string() })),
  historyDropped: z.int().min(0).optional(),
  analysis: z.looseObject({ runs: z.array(z.looseObject({ run: z.string(), nextAt: isoTime, startedAt: isoTime })), measurements: z.array(z.unknown()) }).optional(),
}).superRefine((r, ctx) => {
  if (r.step > r.spec.steps.length) ctx.addIssue({ code: 'custom', path: ['step'], message: `step ${r.step} is past the last step` });
  if (r.spec.service !== r.service) ctx.addIssue({ code: 'custom', path: ['service'], message: 'does not match spec.service' });
});
