// `sluice apply -f FILE|DIR`: make the server hold what the files declare.
//   Service: created (PUT, absent before), updated (PUT, different), unchanged.
//   Rollout: created (POST) unless the service's latest rollout has the same spec (unchanged,
//   whatever its phase: re-applying a rolled-back rollout must not start it again); a
//   different spec while a rollout is active is refused: promote or roll it back first.
import type { RolloutState } from '../model/rollout.js';
import type { NamedService } from '../model/service.js';
import type { SluiceClient } from './http.js';
import type { Manifest, RolloutManifest, ServiceManifest } from './manifests.js';
import { ApplyConflictError, ManifestError } from './errors.js';

export interface Change {
  field: string;
  from?: unknown;
  to?: unknown;
}

export interface ApplyResult {
  kind: 'Service' | 'Rollout';
  name: string;
  source: string;
  action: 'created' | 'updated' | 'unchanged';
  changes?: Change[];
  note?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Field-level differences between two JSON values (`versions.v2.endpoints[0].port`). */
export function diff(from: unknown, to: unknown, path = ''): Change[] {
  if (isObject(from) && isObject(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    return keys.flatMap((k) => diff(from[k], to[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(from) && Array.isArray(to)) {
    const n = Math.max(from.length, to.length);
    return Array.from({ length: n }, (_, i) => diff(from[i], to[i], `${path}[${i}]`)).flat();
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ field: path || '(all)', ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) }];
}

function isActive(r: RolloutState): boolean {
  return r.phase === 'Progressing' || r.phase === 'Paused';
}

/** The stored service restricted to the fields a file declares (drops `name` and anything the server adds). */
function comparable(stored: NamedService, declared: Record<string, unknown>): Record<string, unknown> {
  const keys = new Set(['versions', 'stable', 'domains', 'timeout', 'retries', ...Object.keys(declared)]);
  return Object.fromEntries(Object.entries(stored).filter(([k]) => keys.has(k) && k !== 'name'));
}

interface PlannedService {
  result: ApplyResult;
  body: Record<string, unknown>;
}

async function planService(client: SluiceClient, m: ServiceManifest): Promise<PlannedService> {
  const base = { kind: 'Service' as const, name: m.name, source: m.source };
  const current = await client.getOptional<NamedService>(`/v1/services/${encodeURIComponent(m.name)}`);
  if (!current) return { result: { ...base, action: 'created' }, body: m.raw };
  let desired: Record<string, unknown> = { ...m.spec };
  let note: string | undefined;
  // A promotion makes the canary the stable version on the server. A file still naming the old
  // stable would send all traffic back to it on the next apply: keep the promoted one, and say so.
  if (current.stable !== m.spec.stable) {
    const latest = await client.getOptional<RolloutState>(`/v1/rollouts/${encodeURIComponent(m.name)}`);
    // The stable version before that rollout: the other version its first history entry weighs.
    const before = latest && Object.keys(latest.history[0]?.weights ?? {}).find((v) => v !== latest.canary);
    if (latest?.phase === 'Promoted' && latest.canary === current.stable && before === m.spec.stable) {
      desired = { ...desired, stable: current.stable };
      note = `stable stays ${current.stable} (promoted by rollout ${latest.id}); set stable: ${current.stable} in ${m.source} to silence this`;
    }
  }
  const changes = diff(comparable(current, desired), desired);
  const body = note ? { ...m.raw, stable: current.stable } : m.raw;
  return { result: { ...base, action: changes.length ? 'updated' : 'unchanged', ...(changes.length ? { changes } : {}), ...(note ? { note } : {}) }, body };
}

async function planRollout(client: SluiceClient, m: RolloutManifest, services: Map<string, ServiceManifest>): Promise<ApplyResult> {
  const base = { kind: 'Rollout' as const, name: m.name, source: m.source };
  const latest = await client.getOptional<RolloutState>(`/v1/rollouts/${encodeURIComponent(m.name)}`);
  if (latest) {
    const changes = diff(latest.spec, m.spec);
    if (changes.length === 0) return { ...base, action: 'unchanged', note: `${latest.phase}, step ${Math.min(latest.step + 1, latest.spec.steps.length)}/${latest.spec.steps.length}` };
    if (isActive(latest)) {
      const shown = changes
        .slice(0, 5)
        .map((c) => `spec.${c.field}`)
        .join(', ');
      throw new ApplyConflictError(
        `${m.source} (Rollout ${m.name}): service "${m.name}" has an active rollout (${latest.phase}) with a different spec (${shown}${changes.length > 5 ? ', ...' : ''}). ` +
          `Finish it first: sluice rollout promote ${m.name} --full, or sluice rollout rollback ${m.name}; then apply again.`,
      );
    }
  }
  // Catch the usual mistakes before sending (the server checks them too).
  const svc = services.get(m.spec.service)?.spec ?? (await client.getOptional<NamedService>(`/v1/services/${encodeURIComponent(m.spec.service)}`));
  const what = `${m.source} (Rollout ${m.name})`;
  if (!svc) throw new ManifestError(`${what}: spec.service: service "${m.spec.service}" does not exist and is not declared in these files`);
  if (!(m.spec.canary in svc.versions))
    throw new ManifestError(`${what}: spec.canary: "${m.spec.canary}" is not a version of service "${m.spec.service}" (${Object.keys(svc.versions).join(', ')})`);
  return { ...base, action: 'created', ...(latest ? { note: `replaces the ${latest.phase} rollout ${latest.id}` } : {}) };
}

/** Plans everything first (no change is made if any document is refused), then applies in order. */
export async function apply(
  client: SluiceClient,
  manifests: Manifest[],
  opts: { dryRun: boolean; onResult?: (r: ApplyResult) => void },
): Promise<ApplyResult[]> {
  const services = new Map(manifests.filter((m): m is ServiceManifest => m.kind === 'Service').map((m) => [m.name, m]));
  const plan: { m: Manifest; result: ApplyResult; body: Record<string, unknown> }[] = [];
  for (const m of manifests) {
    if (m.kind === 'Service') plan.push({ m, ...(await planService(client, m)) });
    else plan.push({ m, result: await planRollout(client, m, services), body: m.raw });
  }
  const results: ApplyResult[] = [];
  for (const { m, result, body } of plan) {
    if (!opts.dryRun && result.action !== 'unchanged') {
      if (m.kind === 'Service') await client.request('PUT', `/v1/services/${encodeURIComponent(m.name)}`, body);
      else await client.request('POST', '/v1/rollouts', body);
    }
    results.push(result);
    opts.onResult?.(result);
  }
  return results;
}
