// `sluice rollout status SERVICE --watch`: follows GET /v1/events (server-sent events, event
// `rollout`, data = the rollout's state). In a terminal the whole view is redrawn on each change
// (and every second, for the countdowns) with the fleet's ACK summary; otherwise one line per
// history entry is printed.
// Ends when the rollout is Promoted or RolledBack, or on Ctrl-C.
import type { RolloutState } from '../model/rollout.js';
import type { NodeStatus } from '../xds/server.js';
import { EXIT } from './exit-codes.js';
import type { SluiceClient } from './http.js';
import { UnreachableError } from './http.js';
import { painter } from './output.js';
import { changeLine, isFinished, rolloutDetail } from './rollout-view.js';

/** /v1/fleet is the whole fleet (megabytes at 10,000 nodes): fetched only after a rollout
 *  change (weights ACKed, steps, rollback), at most this often. */
const FLEET_EVERY_MS = 2000;
const RECONNECTS = 5;

export function exitCodeOf(r: RolloutState): number {
  return r.phase === 'RolledBack' ? EXIT.rolledBack : EXIT.ok;
}

export async function watchRollout(client: SluiceClient, service: string, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const tty = !!out.isTTY;
  const paint = painter(out);
  let state = await client.request<RolloutState>('GET', `/v1/rollouts/${encodeURIComponent(service)}`);
  let fleet: NodeStatus[] | undefined;
  let printed = 0; // history entries already printed (line mode)
  let fleetAt = 0;

  const draw = () => {
    if (tty) out.write(`\x1b[H\x1b[2J${rolloutDetail(state, { fleet, paint, history: 8 })}\n${paint(2, isFinished(state) ? '' : 'watching; Ctrl-C to stop')}\n`);
    else {
      for (const h of state.history.slice(printed)) out.write(changeLine(state, h) + '\n');
      printed = state.history.length;
    }
  };
  const refreshFleet = async () => {
    if (!tty || Date.now() - fleetAt < FLEET_EVERY_MS) return;
    fleetAt = Date.now();
    fleet = (await client.request<{ nodes: NodeStatus[] }>('GET', '/v1/fleet').catch(() => undefined))?.nodes ?? fleet;
    draw();
  };

  await refreshFleet();
  draw();
  if (isFinished(state)) return exitCodeOf(state);

  const stop = new AbortController();
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    stop.abort();
  };
  process.once('SIGINT', onSigint);
  // Redraws every second for the countdowns; no request.
  const ticker = tty ? setInterval(draw, 1000) : undefined;
  try {
    for (let attempt = 0; !stop.signal.aborted; ) {
      let heard = false;
      await client.events(
        '/v1/events',
        (event, data) => {
          if (event !== 'rollout') return;
          heard = true;
          const next = JSON.parse(data) as RolloutState;
          if (next.service !== service) return;
          // A new rollout of the same service replaces the one watched (its history starts over).
          if (next.id !== state.id) printed = 0;
          else if (next.updatedAt === state.updatedAt && next.history.length === state.history.length) return;
          state = next;
          draw();
          void refreshFleet();
          if (isFinished(state)) stop.abort();
        },
        stop.signal,
      );
      if (stop.signal.aborted) break;
      // The stream ended (server restart, proxy timeout): reconnect, a few times.
      attempt = heard ? 1 : attempt + 1;
      if (attempt > RECONNECTS) throw new UnreachableError(client.url('/v1/events'), `the event stream ended ${RECONNECTS} times in a row`);
      await new Promise((r) => setTimeout(r, 500 * attempt));
      state = await client.request<RolloutState>('GET', `/v1/rollouts/${encodeURIComponent(service)}`);
      draw();
      if (isFinished(state)) break;
    }
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSigint);
  }
  if (interrupted) return EXIT.interrupted;
  if (tty) {
    void refreshFleet();
    draw();
  }
  return exitCodeOf(state);
}
