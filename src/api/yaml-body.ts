// YAML request bodies (application/yaml, application/x-yaml, text/yaml): parsed into the same
// plain objects JSON would give, so every route validates them exactly as it validates JSON.
//
// What a YAML body may cost is bounded:
// - size: YAML_BODY_LIMIT (parsing YAML costs ~0.3 µs per byte with js-yaml, ~30× JSON.parse);
// - nesting: js-yaml's maxDepth (100) refuses `[[[[...` before it recurses;
// - aliases: a few bytes of anchors and aliases (`&a [*b,*b,...]`) stand for gigabytes once
//   expanded ("billion laughs"); any collection reached twice is refused;
// - one document per body; YAML 1.2 core schema only (no !!binary, !!set, !!timestamp, merge keys).
// The `yaml` package was measured too and is not used here: 32 KiB of `[{` took it 256 s, and
// 100 KiB of `[` ran the process out of memory.
import type { FastifyInstance } from 'fastify';
import jsYaml from 'js-yaml';
import { HttpError } from './errors.js';

export const YAML_CONTENT_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];
/** Larger bodies get 413; 10,000 endpoints in YAML are about 480 KiB. JSON bodies may be larger. */
export const YAML_BODY_LIMIT = 1024 * 1024;

function bad(message: string): HttpError {
  return new HttpError(400, 'invalid_argument', `body: ${message}`, [{ field: '(body)', message }]);
}

/** True when some object or array is reachable twice (what a YAML alias to a collection makes). */
function hasSharedNode(root: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (seen.has(v)) return true;
    seen.add(v);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push(child);
  }
  return false;
}

/** One YAML document as plain data; throws a 400 HttpError naming what is wrong. */
export function parseYamlBody(text: string): unknown {
  let value: unknown;
  try {
    value = jsYaml.load(text, { schema: jsYaml.CORE_SCHEMA });
  } catch (err) {
    const e = err as { reason?: string; mark?: { line: number; column: number }; message: string };
    const where = e.mark ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '';
    const reason = e.reason ?? e.message.split('\n')[0]!;
    if (/single document/.test(reason)) throw bad('one YAML document per request, found more (sluice apply sends documents one by one)');
    throw bad(`malformed YAML${where}: ${reason}`);
  }
  if (hasSharedNode(value)) throw bad('YAML aliases to mappings or sequences are not accepted (an alias can stand for an unbounded amount of data): write the value out');
  return value;
}

/** Registers the parser on an app (one line in app.ts). */
export function yamlBodies(app: FastifyInstance): void {
  app.addContentTypeParser(YAML_CONTENT_TYPES, { parseAs: 'string', bodyLimit: YAML_BODY_LIMIT }, (_req, body, done) => {
    try {
      done(null, parseYamlBody(body as string));
    } catch (err) {
      done(err as HttpError, undefined);
    }
  });
}
