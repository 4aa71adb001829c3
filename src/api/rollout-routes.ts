// /v1/rollouts: create, read, and the actions promote / pause / resume / rollback.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../model/duration.js';
import { RolloutSpecSchema } from '../model/rollout.js';
import { NotFoundError } from '../control/services.js';
import type { RolloutController } from '../rollout/controller.js';
import type { RolloutEvent } from '../rollout/machine.js';
import { parseOr400 as parse } from './errors.js';
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

/** Who asked: an optional header for the audit trail, else "api". */
export function actor(req: FastifyRequest): string {
  const who = req.headers['x-sluice-user'];
  return typeof who === 'string' && /^[\w.@: -]{1,64}$/.test(who) ? who : 'api';
}

export function rolloutRoutes(rollouts: RolloutController) {
  return (app: FastifyInstance) => {
    app.get('/v1/rollouts', async () => ({ rollouts: rollouts.list() }));

    app.get('/v1/rollouts/:service', async (req) => {
      const { service } = parseParams(req.params);
      const r = rollouts.get(service);
      if (!r) throw new NotFoundError(`no rollout for service "${service}"`);
      return r;
    });

    app.post('/v1/rollouts', async (req, reply) => {
      const spec = parse(RolloutSpecSchema, req.body);
      return reply.status(201).send(await rollouts.create(spec, actor(req)));
    });

    const action = (name: string, toEvent: (body: unknown) => RolloutEvent) =>
      app.post(`/v1/rollouts/:service/${name}`, async (req) => {
        const { service } = parseParams(req.params);
        return rollouts.act(service, toEvent(req.body), actor(req));
      });
    action('promote', (body) => ({ type: 'promote', full: parse(PromoteBody, body).full }));
    action('pause', (body) => (parse(EmptyBody, body), { type: 'pause' }));
    action('resume', (body) => (parse(EmptyBody, body), { type: 'resume' }));

    app.post('/v1/rollouts/:service/rollback', async (req) => {
      const { service } = parseParams(req.params);
      const { reason } = parse(RollbackBody, req.body);
      const query = parse(RollbackQuery, req.query, ['query']);
      const started = performance.now();
      const state = await rollouts.act(service, { type: 'rollback', reason }, actor(req));
      if (query.wait !== 'ack') return state;
      const pushedMs = performance.now() - started;
      const nodes = await rollouts.awaitFleet(query.timeout ? parseDuration(query.timeout) : 5000);
      // Each node's time counts from the REST call, not from the start of the wait.
      const timed = nodes.map((n) => ({ ...n, ms: n.ms === null ? null : Math.round(n.ms + pushedMs) }));
      return {
        ...state,
        fleet: {
          acknowledged: timed.every((n) => n.state === 'acked' || n.state === 'disconnected'),
          pushedMs: Math.round(pushedMs),
          elapsedMs: Math.round(performance.now() - started),
          nodes: timed,
        },
      };
    });
  };
}
