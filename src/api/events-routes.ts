// GET /v1/events: rollout changes, and the fleet's counts when they change, as server-sent
// events, for the dashboard and `curl -N`.
// A client that stops reading costs at most one pending state per service and one fleet
// summary: while its socket is full, newer states replace older ones, and once it drains it
// gets the latest of each. A client stuck for longer than STALL_MS is disconnected, and so is
// one whose credential ended (signed out, session expired, token removed from the tokens file).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RolloutState } from '../model/rollout.js';
import type { StateWriter } from '../state/writer.js';
import type { FleetSummary, FleetSummaryFeed } from './fleet-list.js';
import { media } from './route-docs.js';

const KEEPALIVE_MS = 15_000;
const STALL_MS = 60_000;

const eventsDoc = {
  operationId: 'streamEvents',
  summary: 'Rollout changes and fleet counts as server-sent events',
  description:
    'Event `rollout`: a Rollout, sent for every rollout at connection and at every change. Event `fleet`: a FleetSummary, sent at connection and when the counts change (at most once a second). Comments (`: keepalive`) every 15 s. EventSource authenticates with the dashboard session cookie.',
  tags: ['events'],
  response: {
    200: media('the stream', 'text/event-stream', z.string(), 'id: 1\nevent: rollout\ndata: {"service":"echo","phase":"Progressing",...}\n\nid: 2\nevent: fleet\ndata: {"nodes":3,...}\n\n'),
  },
};

export function eventRoutes(writer: StateWriter, fleet?: FleetSummaryFeed) {
  return (app: FastifyInstance) => {
    const open = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const end of open) end();
    });
    app.get('/v1/events', { schema: eventsDoc }, (req, reply) => {
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
      let pendingFleet: FleetSummary | null = null;
      let stalledSince: number | null = null;
      const write = (event: 'rollout' | 'fleet', data: unknown) => {
        if (res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return;
        stalledSince = Date.now();
        res.once('drain', drained);
      };
      const drained = () => {
        stalledSince = null;
        const states = [...pending.values()];
        pending.clear();
        for (const s of states) {
          if (stalledSince !== null) pending.set(s.service, s);
          else write('rollout', s);
        }
        const summary = pendingFleet;
        pendingFleet = null;
        if (summary) sendFleet(summary);
      };
      const send = (state: RolloutState) => {
        if (stalledSince === null) return write('rollout', state);
        pending.delete(state.service); // re-insert: the map stays in order of last change
        pending.set(state.service, state);
      };
      const sendFleet = (summary: FleetSummary) => {
        if (stalledSince === null) write('fleet', summary);
        else pendingFleet = summary;
      };
      // The current state first, so a client never misses where things stand.
      for (const r of writer.state.rollouts.values()) send(r);
      if (fleet) sendFleet(fleet.current());
      const allowed = () => req.principal?.stillValid() ?? true;
      const onChange = (state: RolloutState) => (allowed() ? send(state) : end());
      const onFleet = (summary: FleetSummary) => (allowed() ? sendFleet(summary) : end());
      writer.on('rollout', onChange);
      fleet?.on('summary', onFleet);
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
        fleet?.off('summary', onFleet);
        pending.clear();
        pendingFleet = null;
        open.delete(end);
        res.destroy();
      };
      open.add(end);
      req.raw.on('close', end);
    });
  };
}
