// /v1/rollouts: create, read, the actions promote / pause / resume / rollback, the archive of
// finished rollouts, and deleting a finished one.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PrometheusProviders } from '../analysis/prometheus.js';
import { parseDuration } from '../model/duration.js';
import { RolloutSpecSchema } from '../model/rollout.js';
import type { RolloutEvent } from '../rollout/machine.js';
import type { NodeConvergence, RolloutScheduler } from '../rollout/scheduler.js';
import { NotFoundError, NotPersistedError } from '../state/errors.js';
import type { StateWriter } from '../state/writer.js';
import { actor } from './actor.js';
import { HttpError } from './errors.js';
import { ROLLOUT_EXAMPLE, ROLLOUT_SPEC_EXAMPLE } from './examples.js';
import { empty, errors, json } from './route-docs.js';
import { RollbackResultSchema, RolloutViewSchema } from './schemas.js';
import { ServiceParams } from './services-routes.js';

const PromoteBody = z.strictObject({ full: z.boolean().optional().describe('true: promote now, skipping the remaining steps') });
const RollbackBody = z.strictObject({ reason: z.string().min(1).max(1000).optional().describe('recorded in history and sent to webhooks') });
const EmptyBody = z.strictObject({});
const RollbackQuery = z.strictObject({
  wait: z.literal('ack').optional().describe('answer when every node of the service has ACKed the rollback (or the timeout passed)'),
  timeout: z
    .string()
    .optional()
    .describe('how long ?wait=ack waits, e.g. 5s (default 5s, at most 5m)')
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

const tags = ['rollouts'];
const rollout = (description: string) => json(description, RolloutViewSchema, ROLLOUT_EXAMPLE);

export function rolloutRoutes(writer: StateWriter, scheduler: RolloutScheduler, prometheus: PrometheusProviders) {
  return (plain: FastifyInstance) => {
    const app = plain.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/v1/rollouts',
      {
        schema: {
          operationId: 'listRollouts',
          summary: 'The current rollout of every service that has one',
          tags,
          response: { 200: json('the rollouts', z.object({ rollouts: z.array(RolloutViewSchema) }), { rollouts: [ROLLOUT_EXAMPLE] }) },
        },
      },
      async () => ({ rollouts: [...writer.state.rollouts.values()].sort((a, b) => (a.service < b.service ? -1 : 1)) }),
    );

    app.get(
      '/v1/rollouts/:service',
      {
        schema: {
          operationId: 'getRollout',
          summary: "A service's current rollout: phase, step, weights, analysis, history",
          tags,
          params: ServiceParams,
          response: { 200: rollout('the rollout'), ...errors(404) },
        },
      },
      async (req) => {
        const r = writer.state.rollouts.get(req.params.service);
        if (!r) throw new NotFoundError(`no rollout for service "${req.params.service}"`);
        return r;
      },
    );

    app.get(
      '/v1/rollouts/:service/history',
      {
        schema: {
          operationId: 'listArchivedRollouts',
          summary: "A service's finished rollouts (the 20 newest), newest first",
          tags,
          params: ServiceParams,
          response: { 200: json('the archive', z.object({ rollouts: z.array(RolloutViewSchema) }), { rollouts: [] }), ...errors(404) },
        },
      },
      async (req) => {
        const { service } = req.params;
        if (!writer.state.services.has(service) && !writer.state.rollouts.has(service)) throw new NotFoundError(`service "${service}" not found`);
        return { rollouts: await writer.archive(service) };
      },
    );

    app.delete(
      '/v1/rollouts/:service',
      {
        schema: {
          operationId: 'deleteRollout',
          summary: 'Archive a finished (promoted or rolled back) rollout',
          tags,
          params: ServiceParams,
          response: { 204: empty('archived'), ...errors(404, 409, 503) },
        },
      },
      async (req, reply) => {
        await writer.deleteRollout(req.params.service, actor(req));
        return reply.status(204).send();
      },
    );

    app.post(
      '/v1/rollouts',
      {
        schema: {
          operationId: 'createRollout',
          summary: 'Start a rollout of a canary version',
          description: "A finished rollout of the service is archived first; an active one is a 409. A Prometheus metric must name a provider configured on the server (400 otherwise).",
          tags,
          body: RolloutSpecSchema,
          bodyExample: ROLLOUT_SPEC_EXAMPLE,
          response: { 201: rollout('created'), ...errors(404, 409, 503) },
        },
      },
      async (req, reply) => {
        // The server queries only the Prometheus endpoints its operator configured.
        const unknown = prometheus.unknownIn(req.body);
        if (unknown.length) throw new HttpError(400, 'invalid_argument', unknown.map((d) => `${d.field}: ${d.message}`).join('; '), unknown);
        return reply.status(201).send(await writer.createRollout(req.body, actor(req)));
      },
    );

    const action = <B extends z.ZodType>(name: string, summary: string, body: B, bodyExample: z.input<B>, toEvent: (body: z.output<B>) => RolloutEvent) =>
      app.post(
        `/v1/rollouts/:service/${name}`,
        {
          schema: {
            operationId: `${name}Rollout`,
            summary,
            tags,
            params: ServiceParams,
            body,
            bodyExample,
            response: { 200: rollout('the rollout after the change'), ...errors(404, 409, 503) },
          },
        },
        async (req) => writer.rolloutEvent(req.params.service, toEvent(req.body as z.output<B>), actor(req)),
      );
    action('promote', 'Leave the current pause; {"full": true} promotes now', PromoteBody, { full: false }, (b) => ({ type: 'promote', full: b.full }));
    action('pause', 'Pause the schedule (weights stay)', EmptyBody, {}, () => ({ type: 'pause' }));
    action('resume', 'Resume after a pause (a fleet pause waits for the ACK again)', EmptyBody, {}, () => ({ type: 'resume' }));

    app.post(
      '/v1/rollouts/:service/rollback',
      {
        schema: {
          operationId: 'rollbackRollout',
          summary: '100% to stable at once; ?wait=ack answers when every node applied it',
          description:
            'One RouteConfiguration per node, past the debounce. When the store cannot be written the fleet is rolled back anyway and the answer is 507 with the rollout (and the fleet report with ?wait=ack).',
          tags,
          params: ServiceParams,
          querystring: RollbackQuery,
          body: RollbackBody,
          bodyExample: { reason: 'p99 up' },
          response: { 200: json('the rollout after the rollback (with ?wait=ack: and what each node did)', RollbackResultSchema, ROLLOUT_EXAMPLE), ...errors(404, 409, 503, 507) },
        },
      },
      async (req) => {
        const { service } = req.params;
        const { reason } = req.body;
        const query = req.query;
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
        return { ...state!, fleet };
      },
    );
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
