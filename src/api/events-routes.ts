// GET /v1/events: rollout changes as server-sent events, for the dashboard and `curl -N`.
// A client that stops reading costs at most one pending state per service: while its socket
// is full, newer states replace older ones, and once it drains it gets the latest of each.
// A client stuck for longer than STALL_MS is disconnected, and so is one whose credential ended
// (signed out, session expired, token removed from the tokens file).
import type { FastifyInstance } from 'fastify';
import type { RolloutState } from '../model/rollout.js';
import type { StateWriter } from '../state/writer.js';

const KEEPALIVE_MS = 15_000;
const STALL_MS = 60_000;

export function eventRoutes(writer: StateWriter) {
  return (app: FastifyInstance) => {
    const open = new Set<() => void>();
    app.addHook('preClose', async () => {
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
      res.flushHeaders(); // the client sees the stream open now, not at the first event
      let seq = 0;
      /** Latest state per service not yet written because the client is not reading. */
      const pending = new Map<string, RolloutState>();
      let stalledSince: number | null = null;
      const write = (state: RolloutState) => {
        if (res.write(`id: ${++seq}\nevent: rollout\ndata: ${JSON.stringify(state)}\n\n`)) return;
        stalledSince = Date.now();
        res.once('drain', drained);
      };
      const drained = () => {
        stalledSince = null;
        const states = [...pending.values()];
        pending.clear();
        for (const s of states) {
          if (stalledSince !== null) pending.set(s.service, s);
          else write(s);
        }
      };
      const send = (state: RolloutState) => {
        if (stalledSince === null) return write(state);
        pending.delete(state.service); // re-insert: the map stays in order of last change
        pending.set(state.service, state);
      };
      // The current state first, so a client never misses where things stand.
      for (const r of writer.state.rollouts.values()) send(r);
      const allowed = () => req.principal?.stillValid() ?? true;
      const onChange = (state: RolloutState) => (allowed() ? send(state) : end());
      writer.on('rollout', onChange);
      const keepalive = setInterval(() => {
        if (!allowed()) end();
        else if (stalledSince === null) res.write(': keepalive\n\n');
        else if (Date.now() - stalledSince > STALL_MS) {
          req.log.warn({ pending: pending.size }, 'event stream client stopped reading; disconnected');
          end();
        }
      }, Math.min(KEEPALIVE_MS, STALL_MS / 4));
      const end = () => {
        clearInterval(keepalive);
        writer.off('rollout', onChange);
        pending.clear();
        open.delete(end);
        res.destroy();
      };
      open.add(end);
      req.raw.on('close', end);
    });
  };
}
