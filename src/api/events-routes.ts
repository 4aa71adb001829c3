// GET /v1/events: rollout changes as server-sent events, for the dashboard and `curl -N`.
import type { FastifyInstance } from 'fastify';
import type { RolloutController } from '../rollout/controller.js';
import type { RolloutState } from '../model/rollout.js';

const KEEPALIVE_MS = 15_000;

export function eventRoutes(rollouts: RolloutController) {
  return (app: FastifyInstance) => {
    const open = new Set<() => void>();
    app.addHook('onClose', async () => {
      for (const end of open) end();
    });
    app.get('/v1/events', (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let seq = 0;
      const send = (state: RolloutState) => res.write(`id: ${++seq}\nevent: rollout\ndata: ${JSON.stringify(state)}\n\n`);
      // The current state first, so a client never misses where things stand.
      for (const r of rollouts.list()) send(r);
      rollouts.on('change', send);
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      const end = () => {
        clearInterval(keepalive);
        rollouts.off('change', send);
        open.delete(end);
        res.end();
      };
      open.add(end);
      req.raw.on('close', end);
    });
  };
}
