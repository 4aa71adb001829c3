// Client commands: services, rollout, fleet, apply — the REST API for people and scripts.
import { Command, Option } from 'commander';
import { parseDuration } from '../model/duration.js';
import type { RolloutState } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';
import type { NodeStatus } from '../xds/server.js';
import type { ApplyResult } from './apply.js';
import { NotAcknowledgedError, UsageError } from './errors.js';
import { EXIT_CODES_HELP } from './exit-codes.js';
import { fleetTable, nodeDetail } from './fleet-view.js';
import { parseServerUrl, SluiceClient } from './http.js';
import type { Format } from './output.js';
import { FORMATS, isMachine, serialize, table, weightsText } from './output.js';
import { actionLine, rolloutDetail, rolloutList } from './rollout-view.js';
import { watchRollout } from './watch.js';

const DEFAULT_SERVER = 'http://127.0.0.1:8080';

interface ClientOptions {
  server?: string;
  token?: string;
  output?: Format;
  requestTimeout?: string;
}

/** --server, --token, -o, --request-timeout: on the program (before the command) and on every client command (anywhere after it). */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .option('-s, --server <url>', `Sluice REST API, with any path prefix (default $SLUICE_SERVER or ${DEFAULT_SERVER})`)
    .option('--token <token>', 'API bearer token (default $SLUICE_API_TOKEN)')
    .addOption(new Option('-o, --output <format>', 'output format: table (default), wide, json, yaml').choices(FORMATS))
    .option('--request-timeout <duration>', 'give up on a request without an answer after this long (default 30s)');
}

interface Context {
  client: SluiceClient;
  format: Format;
  out: (text: string) => void;
  /** Prints the server's object for -o json|yaml, else `human()`. */
  print: (value: unknown, human: () => string) => void;
}

function contextOf(cmd: Command): Context {
  // The option nearest the command wins (`sluice -o json fleet -o yaml` is yaml).
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.push(c);
  const pick = <K extends keyof ClientOptions>(k: K): ClientOptions[K] => chain.map((c) => c.opts<ClientOptions>()[k]).find((v) => v !== undefined);
  let server: string;
  let timeoutMs: number;
  try {
    server = parseServerUrl(pick('server') ?? process.env.SLUICE_SERVER ?? DEFAULT_SERVER);
    timeoutMs = parseDuration(pick('requestTimeout') ?? '30s');
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^invalid duration/, '--request-timeout: invalid duration'));
  }
  if (timeoutMs <= 0) throw new UsageError('--request-timeout: must be more than 0');
  const token = pick('token') ?? (process.env.SLUICE_API_TOKEN || undefined);
  const format = pick('output') ?? 'table';
  const out = (text: string) => void process.stdout.write(text);
  return {
    client: new SluiceClient({ server, token, timeoutMs }),
    format,
    out,
    print: (value, human) => out(isMachine(format) ? serialize(value, format) : human()),
  };
}

/** A client command: the shared options, exit codes in its help, and an action given its context. */
function clientCommand(parent: Command, spec: string, description: string, action: (ctx: Context, args: string[], opts: Record<string, unknown>) => Promise<void>): Command {
  const cmd = addClientOptions(parent.command(spec).description(description)).addHelpText('after', EXIT_CODES_HELP);
  cmd.action(async (...params: unknown[]) => {
    const self = params.at(-1) as Command;
    await action(contextOf(self), self.processedArgs as string[], self.opts());
  });
  return cmd;
}

const enc = encodeURIComponent;
/** Loaded when a command reads files: the schemas bring RE2 (WebAssembly), slow to start for nothing. */
const manifests = () => import('./manifests.js');

function servicesTable(services: NamedService[], wide: boolean): string {
  if (services.length === 0) return 'No services.\n';
  return table(
    ['NAME', 'STABLE', 'VERSIONS', 'ENDPOINTS', ...(wide ? ['DOMAINS', 'TIMEOUT', 'RETRIES'] : [])],
    services.map((s) => [
      s.name,
      s.stable,
      Object.keys(s.versions).join(','),
      String(Object.values(s.versions).reduce((n, v) => n + v.endpoints.length, 0)),
      ...(wide ? [(s.domains ?? [s.name, `${s.name}:*`]).join(','), s.timeout ?? '-', s.retries ? `${s.retries.attempts}× on ${s.retries.on.join(',')}` : '-'] : []),
    ]),
  );
}

function serviceDetail(s: NamedService): string {
  const head = [
    `Service:  ${s.name}`,
    `Stable:   ${s.stable}`,
    `Domains:  ${(s.domains ?? [s.name, `${s.name}:*`]).join(', ')}${s.domains ? '' : ' (default)'}`,
    ...(s.timeout ? [`Timeout:  ${s.timeout}`] : []),
    ...(s.retries ? [`Retries:  ${s.retries.attempts} attempts on ${s.retries.on.join(', ')}${s.retries.perTryTimeout ? `, ${s.retries.perTryTimeout} per try` : ''}`] : []),
    '',
  ].join('\n');
  const rows = Object.entries(s.versions).map(([v, ver]) => [
    v + (v === s.stable ? ' (stable)' : ''),
    ver.endpoints.map((e) => `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}${e.weight ? ` w${e.weight}` : ''}`).join(', '),
    ver.cluster ?? `${s.name}-${v}`,
    ver.protocol ?? '-',
  ]);
  return head + '\n' + table(['VERSION', 'ENDPOINTS', 'CLUSTER', 'PROTOCOL'], rows);
}

function servicesCommands(program: Command): void {
  const services = program.command('services').description('declare services and their versions (PUT/GET/DELETE /v1/services)');
  clientCommand(services, 'list', 'list the services', async (ctx) => {
    const body = await ctx.client.request<{ services: NamedService[] }>('GET', '/v1/services');
    ctx.print(body, () => servicesTable(body.services, ctx.format === 'wide'));
  });
  clientCommand(services, 'get <name>', 'one service: its versions and endpoints', async (ctx, [name]) => {
    const body = await ctx.client.request<NamedService>('GET', `/v1/services/${enc(name!)}`);
    ctx.print(body, () => (ctx.format === 'wide' ? servicesTable([body], true) : serviceDetail(body)));
  });
  clientCommand(services, 'put [name]', 'create or replace a service from a file (YAML or JSON: a Service document or the bare body)', async (ctx, [name], opts) => {
    const { name: declared, body } = (await manifests()).loadBody(opts.file as string, 'Service');
    if (name && declared && name !== declared) throw new UsageError(`NAME "${name}" differs from the file's name "${declared}"`);
    const target = name ?? declared;
    if (!target) throw new UsageError('services put: NAME is required (or a Service document with name: in the file)');
    const { status, body: stored } = await ctx.client.exchange<NamedService>('PUT', `/v1/services/${enc(target)}`, body);
    ctx.print(stored, () => `service/${stored.name} ${status === 201 ? 'created' : 'configured'}\n`);
  }).requiredOption('-f, --file <file>', 'YAML or JSON file, - for stdin');
  clientCommand(services, 'delete <name>', 'delete a service (refused while a rollout uses it)', async (ctx, [name]) => {
    await ctx.client.request('DELETE', `/v1/services/${enc(name!)}`);
    ctx.print({ deleted: name }, () => `service/${name} deleted\n`);
  });
}

function rolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('start, follow and steer rollouts (/v1/rollouts)');
  clientCommand(rollout, 'create', 'start a rollout from a file (YAML or JSON: a Rollout document or the bare body)', async (ctx, _args, opts) => {
    const { body } = (await manifests()).loadBody(opts.file as string, 'Rollout');
    const state = await ctx.client.request<RolloutState>('POST', '/v1/rollouts', body);
    ctx.print(state, () => actionLine(state, `created (${state.stable} → ${state.canary})`));
  }).requiredOption('-f, --file <file>', 'YAML or JSON file, - for stdin');
  clientCommand(rollout, 'list', 'every service\'s latest rollout', async (ctx) => {
    const body = await ctx.client.request<{ rollouts: RolloutState[] }>('GET', '/v1/rollouts');
    ctx.print(body, () => rolloutList(body.rollouts, ctx.format === 'wide'));
  });
  clientCommand(rollout, 'status <service>', 'where a rollout stands: steps, weights, pause, analysis, fleet ACKs, history', async (ctx, [service], opts) => {
    if (opts.watch) {
      if (isMachine(ctx.format)) throw new UsageError('--watch draws a view or prints lines; for machine output use -o json without --watch');
      process.exitCode = await watchRollout(ctx.client, service!);
      return;
    }
    const state = await ctx.client.request<RolloutState>('GET', `/v1/rollouts/${enc(service!)}`);
    if (isMachine(ctx.format)) return ctx.print(state, () => '');
    // The fleet adds the ACK summary; the status stands without it (e.g. a token that may not read it).
    const fleet = await ctx.client.request<{ nodes: NodeStatus[] }>('GET', '/v1/fleet').catch(() => undefined);
    ctx.out(rolloutDetail(state, { fleet: fleet?.nodes, history: ctx.format === 'wide' ? Infinity : 5 }));
  }).option('-w, --watch', 'follow it live until it is promoted (exit 0) or rolled back (exit 5)');
  clientCommand(rollout, 'promote <service>', 'leave the current pause, or with --full go to 100% now', async (ctx, [service], opts) => {
    const state = await ctx.client.request<RolloutState>('POST', `/v1/rollouts/${enc(service!)}/promote`, opts.full ? { full: true } : {});
    ctx.print(state, () => actionLine(state, 'promoted'));
  }).option('--full', 'skip the remaining steps: the canary takes all traffic');
  for (const [verb, done, what] of [
    ['pause', 'paused', 'hold the rollout at its current weights'],
    ['resume', 'resumed', 'continue a paused rollout'],
  ] as const)
    clientCommand(rollout, `${verb} <service>`, what, async (ctx, [service]) => {
      const state = await ctx.client.request<RolloutState>('POST', `/v1/rollouts/${enc(service!)}/${verb}`, {});
      ctx.print(state, () => actionLine(state, done));
    });
  clientCommand(rollout, 'rollback <service>', 'send all traffic back to the stable version now', async (ctx, [service], opts) => {
    const timeout = opts.timeout as string | undefined;
    if (timeout && !opts.wait) throw new UsageError('--timeout goes with --wait');
    let waitMs = 5000;
    if (timeout) {
      try {
        waitMs = parseDuration(timeout);
      } catch (err) {
        throw new UsageError(`--timeout: ${(err as Error).message}`);
      }
    }
    const query = opts.wait ? `?wait=ack${timeout ? `&timeout=${enc(timeout)}` : ''}` : '';
    const body = opts.reason ? { reason: opts.reason } : {};
    type Answer = RolloutState & { fleet?: { acknowledged: boolean; pushedMs: number; elapsedMs: number; nodes: { node: string; stream: number; state: string; ms: number | null; message?: string }[] } };
    const state = await ctx.client.request<Answer>('POST', `/v1/rollouts/${enc(service!)}/rollback${query}`, body, {
      timeoutMs: Math.max(ctx.client.target.timeoutMs, waitMs + 10_000),
    });
    ctx.print(state, () => {
      let text = `rollout/${state.service} rolled back: ${weightsText(state.weights)}\n`;
      const f = state.fleet;
      if (f) {
        if (f.nodes.length) text += table(['NODE', 'STREAM', 'STATE', 'MS', 'MESSAGE'], f.nodes.map((n) => [n.node, String(n.stream), n.state, n.ms === null ? '-' : String(n.ms), n.message ?? '']));
        const late = f.nodes.filter((n) => n.state !== 'acked' && n.state !== 'disconnected');
        text += f.nodes.length === 0
          ? 'fleet: no xDS nodes connected, nothing to wait for\n'
          : f.acknowledged
          ? `fleet: ${f.nodes.length} node stream(s) acknowledged, ${f.elapsedMs} ms after the request\n`
          : `fleet: NOT acknowledged within ${timeout ?? '5s'}: ${late.map((n) => `${n.node} ${n.state}`).join(', ')}\n`;
      }
      return text;
    });
    if (state.fleet && !state.fleet.acknowledged) throw new NotAcknowledgedError(`rollback of ${state.service} is not acknowledged by every node`);
  })
    .option('--reason <text>', 'why (kept in the rollout history and sent to webhooks)')
    .option('--wait', 'answer only when every connected node ACKed the rollback; exit 3 if one did not in time')
    .option('--timeout <duration>', 'with --wait: how long to wait (default 5s, at most 5m)');
}

function fleetCommand(program: Command): void {
  clientCommand(program, 'fleet [node]', 'xDS nodes and what each holds: SYNCED / STALE / NACKED per LDS RDS CDS EDS', async (ctx, [node]) => {
    const body = await ctx.client.request<{ nodes: NodeStatus[] }>('GET', '/v1/fleet');
    if (node === undefined) return ctx.print(body, () => fleetTable(body.nodes, ctx.format === 'wide'));
    const found = body.nodes.find((n) => n.id === node);
    if (!found) throw new UsageError(`fleet: no connected node "${node}" (sluice fleet lists them)`);
    ctx.print(found, () => nodeDetail(found));
  }).addHelpText(
    'after',
    `
States per type:
  SYNCED    the last version sent is ACKed
  STALE     a version was sent and is not ACKed yet
  NACKED    the node rejected the last version sent (-o wide or \`sluice fleet NODE\` shows why)
  NOT SENT  subscribed, nothing sent yet
  -         not subscribed`,
  );
}

function applyCommand(program: Command): void {
  clientCommand(program, 'apply', 'create or update services and start rollouts from YAML/JSON files (docs/cli.md)', async (ctx, _args, opts) => {
    const { apply } = await import('./apply.js');
    const docs = (await manifests()).loadManifests(opts.file as string[]);
    const dryRun = !!opts.dryRun;
    const line = (r: ApplyResult) => {
      let s = `${r.kind.toLowerCase()}/${r.name} ${r.action}${dryRun ? ' (dry run)' : ''}${r.note ? `: ${r.note}` : ''}\n`;
      for (const c of r.changes ?? []) s += `  ${c.field}: ${c.from === undefined ? '(none)' : JSON.stringify(c.from)} → ${c.to === undefined ? '(none)' : JSON.stringify(c.to)}\n`;
      return s;
    };
    const results = await apply(ctx.client, docs, { dryRun, onResult: isMachine(ctx.format) ? undefined : (r) => ctx.out(line(r)) });
    if (isMachine(ctx.format)) ctx.print({ dryRun, results }, () => '');
  })
    .requiredOption('-f, --file <path...>', 'YAML/JSON files or directories (every *.yaml, *.yml, *.json in it, sorted); - for stdin')
    .option('--dry-run', 'print what would change (created / updated with the fields / unchanged); change nothing')
    .addHelpText(
      'after',
      `
File format (YAML, several documents separated by ---, or JSON):
  kind: Service            kind: Rollout
  name: echo               spec:
  spec:                      service: echo
    versions: {...}          canary: v2
    stable: v1               steps: [...]
Services are applied before rollouts. A rollout whose service's latest rollout has the
same spec is unchanged; a different spec while one is active is refused (exit 2).`,
    );
}

export function registerClientCommands(program: Command): void {
  servicesCommands(program);
  rolloutCommands(program);
  fleetCommand(program);
  applyCommand(program);
}
