// Examples shown in GET /openapi.json (test/api/openapi.test.ts checks each against its schema).
export const SERVICE_EXAMPLE = {
  versions: {
    v1: { endpoints: [{ address: '10.0.0.11', port: 50051 }] },
    v2: { endpoints: [{ address: '10.0.0.12', port: 50051 }] },
  },
  stable: 'v1',
};

export const ROLLOUT_SPEC_EXAMPLE = {
  service: 'echo',
  canary: 'v2',
  steps: [{ setWeight: 5 }, { pause: { duration: '2m' } }, { setWeight: 20 }, { pause: {} }, { setWeight: 50 }],
  headerRoutes: [{ name: 'testers', match: [{ header: 'x-canary', exact: 'true' }] }],
  sticky: { bucketHeader: 'x-user-bucket', buckets: 100 },
  analysis: { interval: '30s', failureLimit: 1, metrics: [{ name: 'success', successRate: { min: 0.99 } }, { name: 'p99', latencyP99: { maxMs: 250 } }] },
};

const at = '2026-03-01T10:15:02.114Z';
export const ROLLOUT_EXAMPLE = {
  id: 'echo-1772360102114',
  spec: ROLLOUT_SPEC_EXAMPLE,
  service: 'echo',
  stable: 'v1',
  canary: 'v2',
  phase: 'Progressing',
  step: 1,
  canaryWeight: 5,
  weights: { v1: 95, v2: 5 },
  headerRoutesActive: true,
  awaitingAck: null,
  pauseUntil: '2026-03-01T10:17:02.300Z',
  pausedBy: null,
  pauseRemainingMs: null,
  lastAckAt: '2026-03-01T10:15:02.300Z',
  lastAckNodes: 12,
  createdAt: at,
  updatedAt: '2026-03-01T10:15:02.300Z',
  history: [
    { at, event: 'Created', weights: { v1: 100, v2: 0 }, by: 'alice', reason: 'rollout of v2 over v1' },
    { at, event: 'WeightSet', weights: { v1: 95, v2: 5 }, by: 'alice', reason: 'step 0', step: 0 },
    { at: '2026-03-01T10:15:02.300Z', event: 'StepCompleted', weights: { v1: 95, v2: 5 }, by: 'fleet', reason: 'step 0: 12 nodes of the service ACKed 5%', step: 0 },
    { at: '2026-03-01T10:15:02.300Z', event: 'PauseStarted', weights: { v1: 95, v2: 5 }, by: 'fleet', reason: 'step 1: pause 2m until 2026-03-01T10:17:02.300Z', step: 1 },
  ],
  analysis: {
    runs: [{ run: 'background', startedAt: at, nextAt: '2026-03-01T10:15:32.114Z', successful: 0, failed: 0, inconclusive: 0 }],
    measurements: [],
  },
};
