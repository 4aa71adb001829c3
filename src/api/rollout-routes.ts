// /v1/rollouts: create, read, the actions promote / pause / resume / rollback, the archive of
// finished rollouts, and deleting a finished one.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PrometheusProviders } from '../analysis/prometheus.js';
import { parseDuration } from '../model/duration.js';
import { RolloutSpecSchema } from '../model/rollout.js';
import type { RolloutEvent } from '../rollout/machine.js';
import type { NodeConvergence, RolloutScheduler } from '../rollout/scheduler.js';
import { NotFoundError, NotPersistedError } from '../state/errors.js';
import type { StateWriter } from '../state/writer.js';
import { actor } from './actor.js';
import { HttpError, parseOr400 as parse } from './errors.js';
import { parseParams } from './services-routes.js';

const PromoteBody = z.strictObject({ full: z.boolean().optional() });
const RollbackBody = z.strictObject({ reason: z.string().min(1).max(1000).optional() });
const EmptyBody = z.strictObject({});
const RollbackQuery = z.strictObject({
  wait: z.literal('ack').optional(),
  timeout: z
    .string()
    .optional()
    .superRefine((t, ctx) => {
      if (t === undefined) return;
      try {
        const ms = parseDuration(t);
        if (ms <= 0 || ms > 300_000) ctx.addIssue({ code: 'custom', message: 'must be more than 0 and at most 5m' });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
});

export function rolloutRoutes(writer: StateWriter, scheduler: RolloutScheduler, prometheus: PrometheusProviders) {
  return (app: FastifyInstance) => {
    app.get('/v1/rollouts', async () => ({ rollouts: [...writer.state.rollouts.values()].sort((a, b) => (a.service < b.service ? -1 : 1)) }));

    app.get('/v1/rollouts/:service', async (req) => {
      const { service } = parseParams(req.params);
      const r = writer.state.rollouts.get(service);
      if (!r) throw new NotFoundError(`no rollout for service "${service}"`);
      return r;
    });

    app.get('/v1/rollouts/:service/history', async (req) => {
      const { service } = parseParams(req.params);
      if (!writer.state.services.has(service) && !writer.state.rollouts.has(service)) throw new NotFoundError(`service "${service}" not found`);
      return { rollouts: await writer.archive(service) };
    });

    app.delete('/v1/rollouts/:service', async (req, reply) => {
      const { service } = parseParams(req.params);
      await writer.deleteRollout(service, actor(req));
      return reply.status(204).send();
    });

    app.post('/v1/rollouts', async (req, reply) => {
      const spec = parse(RolloutSpecSchema, req.body);
      // The server queries only the Prometheus endpoints its operator configured.
      const unknown = prometheus.unknownIn(spec);
      if (unknown.length) throw new HttpError(400, 'invalid_argument', unknown.map((d) => `${d.field}: ${d.message}`).join('; '), unknown);
      return reply.status(201).send(await writer.createRollout(spec, actor(req)));
    });

    const action = (name: string, toEvent: (body: unknown) => RolloutEvent) =>
      app.post(`/v1/rollouts/:service/${name}`, async (req) => {
        const { service } = parseParams(req.params);
        return writer.rolloutEvent(service, toEvent(req.body), actor(req));
      });
    action('promote', (body) => ({ type: 'promote', full: parse(PromoteBody, body).full }));
    action('pause', (body) => (parse(EmptyBody, body), { type: 'pause' }));
    action('resume', (body) => (parse(EmptyBody, body), { type: 'resume' }));

    app.post('/v1/rollouts/:service/rollback', async (req) => {
      const { service } = parseParams(req.params);
      const { reason } = parse(RollbackBody, req.body);
      const query = parse(RollbackQuery, req.query, ['query']);
      const started = performance.now();
      let state;
      let notPersisted: NotPersistedError | undefined;
      try {
        state = await writer.rolloutEvent(service, { type: 'rollback', reason }, actor(req));
      } catch (err) {
        // The fleet was rolled back but the store refused: still say what the fleet did.
        if (!(err instanceof NotPersistedError) || query.wait !== 'ack') throw err;
        notPersisted = err;
      }
      if (query.wait !== 'ack') return state;
      const pushedMs = performance.now() - started;
      const nodes = await scheduler.awaitFleet(service, query.timeout ? parseDuration(query.timeout) : 5000);
      const fleet = fleetReport(nodes, pushedMs, started);
      if (notPersisted) throw new HttpError(507, 'not_persisted', notPersisted.message, [], { rollout: notPersisted.value, fleet });
      return { ...state, fleet };
    });
  };
}

/** Each node's time counts from the REST call, not from the start of the wait. */
function fleetReport(nodes: NodeConvergence[], pushedMs: number, started: number) {
  const timed = nodes.map((n) => ({ ...n, ms: n.ms === null ? null : Math.round(n.ms + pushedMs) }));
  return {
    acknowledged: timed.every((n) => n.state === 'acked' || n.state === 'disconnected'),
    nodeCount: new Set(timed.map((n) => n.node)).size,
    pushedMs: Math.round(pushedMs),
    elapsedMs: Math.round(performance.now() - started),
    nodes: timed,
  };
}
