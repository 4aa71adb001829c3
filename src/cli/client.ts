// Client commands: the REST API from the shell (`sluice rollout status echo`).
import fs from 'node:fs';
import { parseArgs } from 'node:util';

interface Target {
  server: string;
  token?: string;
}

async function request(t: Target, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(new URL(path, t.server), {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(t.token ? { authorization: `Bearer ${t.token}` } : {}),
      'x-sluice-user': `cli:${process.env.USER ?? 'unknown'}`,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json: unknown = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = (json as { error?: { message?: string } } | null)?.error;
    throw new Error(`${res.status} ${err?.message ?? text}`);
  }
  return json;
}

function readJson(file: string): unknown {
  return JSON.parse(file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8'));
}

export const CLIENT_USAGE = `client commands (--server URL, default $SLUICE_SERVER or http://127.0.0.1:8080;
                 --token T, default $SLUICE_API_TOKEN):
  services list | get NAME | put NAME -f FILE.json | delete NAME
  rollout  list | status SERVICE | create -f SPEC.json | promote SERVICE [--full]
           | pause SERVICE | resume SERVICE | rollback SERVICE [--reason TEXT] [--wait] [--timeout 5s]
  fleet`;

export async function clientCommand(command: 'services' | 'rollout' | 'fleet', argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      server: { type: 'string', default: process.env.SLUICE_SERVER ?? 'http://127.0.0.1:8080' },
      token: { type: 'string', default: process.env.SLUICE_API_TOKEN },
      file: { type: 'string', short: 'f' },
      full: { type: 'boolean', default: false },
      reason: { type: 'string' },
      wait: { type: 'boolean', default: false },
      timeout: { type: 'string' },
    },
  });
  const t: Target = { server: values.server, token: values.token };
  const [verb, name] = positionals;
  const need = (what: string) => {
    if (!name) throw new Error(`${command} ${verb}: ${what} is required`);
    return encodeURIComponent(name);
  };
  const file = () => {
    if (!values.file) throw new Error(`${command} ${verb}: -f FILE.json is required`);
    return readJson(values.file);
  };
  let out: unknown;
  if (command === 'fleet') out = await request(t, 'GET', '/v1/fleet');
  else if (command === 'services') {
    if (verb === 'list') out = await request(t, 'GET', '/v1/services');
    else if (verb === 'get') out = await request(t, 'GET', `/v1/services/${need('NAME')}`);
    else if (verb === 'put') out = await request(t, 'PUT', `/v1/services/${need('NAME')}`, file());
    else if (verb === 'delete') out = await request(t, 'DELETE', `/v1/services/${need('NAME')}`);
    else throw new Error(`services: unknown verb ${verb ?? '(none)'}`);
  } else {
    if (verb === 'list') out = await request(t, 'GET', '/v1/rollouts');
    else if (verb === 'status') out = await request(t, 'GET', `/v1/rollouts/${need('SERVICE')}`);
    else if (verb === 'create') out = await request(t, 'POST', '/v1/rollouts', file());
    else if (verb === 'promote') out = await request(t, 'POST', `/v1/rollouts/${need('SERVICE')}/promote`, values.full ? { full: true } : {});
    else if (verb === 'pause' || verb === 'resume') out = await request(t, 'POST', `/v1/rollouts/${need('SERVICE')}/${verb}`, {});
    else if (verb === 'rollback') {
      const query = values.wait ? `?wait=ack${values.timeout ? `&timeout=${encodeURIComponent(values.timeout)}` : ''}` : '';
      out = await request(t, 'POST', `/v1/rollouts/${need('SERVICE')}/rollback${query}`, values.reason ? { reason: values.reason } : {});
    } else throw new Error(`rollout: unknown verb ${verb ?? '(none)'}`);
  }
  if (out !== null) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}
