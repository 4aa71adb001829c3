// The xDS access policy: which client identities may claim which node ids (and node clusters), and
// which services those nodes may read.
//
//   rules:
//     - identity: "spiffe://example.org/ns/shop/*"
//       nodeIds: ["shop-*"]
//       nodeClusters: ["shop"]      # optional; default: any cluster
//       services: ["echo"]          # or ["*"]: every service
//
// Patterns: `*` matches any run of characters, `/` included (also none); every other character
// matches itself, case-sensitively; there is no escape. Rules only grant: a node is allowed when at
// least one rule matches its identity, node id and cluster, and it reads the union of the services
// of every rule that does. Order does not matter.
import jsYaml from 'js-yaml';
import { z } from 'zod';
import { NAME } from '../model/service.js';
import type { Scope } from '../reconcile/node-groups.js';

const MAX_PATTERN = 1024;

const Pattern = z.string().min(1, 'must not be empty').max(MAX_PATTERN, `must be at most ${MAX_PATTERN} characters`);

const RuleSchema = z.strictObject({
  identity: Pattern,
  nodeIds: z.array(Pattern).min(1, 'must list at least one pattern ("*" for any)').max(1000),
  nodeClusters: z.array(Pattern).min(1, 'must list at least one pattern, or be left out for any').max(1000).optional(),
  services: z
    .array(z.union([z.literal('*'), z.string().regex(NAME, 'must be a service name or "*"')]))
    .min(1, 'must list at least one service ("*" for all)')
    .max(10_000),
});

const PolicySchema = z.strictObject({ rules: z.array(RuleSchema).max(10_000) });

export type PolicyRule = z.infer<typeof RuleSchema>;

/** Whether `text` matches the glob `pattern` (see above). Linear-time backtracking on the last
 *  star only, so no pattern can make a match slow. */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export type PolicyDecision = { allowed: true; services: Scope } | { allowed: false; message: string };

export interface ClaimedNode {
  id: string;
  cluster: string;
}

/** A value from the client or its certificate, as a message shows it. */
function shown(v: string): string {
  return JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v);
}

export class XdsPolicy {
  constructor(readonly rules: readonly PolicyRule[]) {}

  /** What the client with `identity` may do as `node`; a refusal names what was refused, never the rules. */
  decide(identity: string, node: ClaimedNode): PolicyDecision {
    let identityMatched = false;
    let nodeIdMatched = false;
    let services: Set<string> | undefined;
    for (const rule of this.rules) {
      if (!globMatch(rule.identity, identity)) continue;
      identityMatched = true;
      if (!rule.nodeIds.some((p) => globMatch(p, node.id))) continue;
      nodeIdMatched = true;
      if (rule.nodeClusters && !rule.nodeClusters.some((p) => globMatch(p, node.cluster))) continue;
      if (rule.services.includes('*')) return { allowed: true, services: '*' };
      services ??= new Set();
      for (const s of rule.services) services.add(s);
    }
    if (services) return { allowed: true, services };
    if (!identityMatched) return { allowed: false, message: `identity ${shown(identity)} matches no rule of the xDS policy` };
    if (!nodeIdMatched) return { allowed: false, message: `identity ${shown(identity)} may not claim node id ${shown(node.id)}` };
    return { allowed: false, message: `identity ${shown(identity)} may not claim node cluster ${shown(node.cluster)} for node id ${shown(node.id)}` };
  }
}

/** A policy file's text (YAML, or JSON which is YAML) as a policy, or an Error naming the line
 *  or field at fault. */
export function parsePolicy(text: string): XdsPolicy {
  let raw: unknown;
  try {
    raw = jsYaml.load(text);
  } catch (err) {
    const e = err as Error & { reason?: string; mark?: { line: number } };
    throw new Error(`not YAML or JSON${e.mark ? ` (line ${e.mark.line + 1})` : ''}: ${e.reason ?? 'syntax error'}`);
  }
  const parsed = PolicySchema.safeParse(raw ?? {});
  if (!parsed.success)
    throw new Error(
      parsed.error.issues
        .slice(0, 10)
        .map((i) => `${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(file)'}: ${i.message}`)
        .join('; '),
    );
  return new XdsPolicy(parsed.data.rules);
}
