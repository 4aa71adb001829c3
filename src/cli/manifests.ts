// Declarative files: YAML (several documents per file) or JSON, each document one Service or
// one Rollout in a small envelope around the REST body:
//
//   apiVersion: sluice/v1     # optional
//   kind: Service             # or Rollout
//   name: echo                # Service: required; Rollout: optional, must equal spec.service
//   spec: { ...the body of PUT /v1/services/echo or POST /v1/rollouts... }
//
// Everything is checked here with the server's own schemas before anything is sent, so a bad
// file fails without a request and the error names the file, the document and the field.
import fs from 'node:fs';
import path from 'node:path';
import jsYaml from 'js-yaml';
import { z } from 'zod';
import { RolloutSpecSchema } from '../model/rollout.js';
import type { RolloutSpec } from '../model/rollout.js';
import { NameSchema, ServiceSchema } from '../model/service.js';
import { ManifestError } from './errors.js';
import type { Service } from '../model/service.js';

export const API_VERSION = 'sluice/v1';
export const KINDS = ['Service', 'Rollout'] as const;
const EXTENSIONS = ['.yaml', '.yml', '.json'];
/** Files larger than this are refused (a manifest is a few KiB; the server takes 4 MiB bodies). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

interface Common {
  /** Where it came from: `dir/echo.yaml, document 2`. */
  source: string;
  /** The spec exactly as written (sent to the server, which applies its own defaults). */
  raw: Record<string, unknown>;
}
export interface ServiceManifest extends Common {
  kind: 'Service';
  name: string;
  spec: Service;
}
export interface RolloutManifest extends Common {
  kind: 'Rollout';
  name: string;
  spec: RolloutSpec;
}
export type Manifest = ServiceManifest | RolloutManifest;

const EnvelopeSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION).optional(),
  kind: z.enum(KINDS),
  name: NameSchema.optional(),
  spec: z.record(z.string(), z.unknown()),
});

function fieldPath(p: readonly PropertyKey[]): string {
  return p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '');
}

/** Zod issues as "field: message; field: message", unknown keys named themselves. */
export function describeIssues(err: z.ZodError, prefix: readonly PropertyKey[] = []): string {
  return err.issues
    .map((i) => {
      const p = i.code === 'unrecognized_keys' ? [...prefix, ...i.path, i.keys[0]!] : [...prefix, ...i.path];
      return `${fieldPath(p) || '(document)'}: ${i.message}`;
    })
    .join('; ');
}

/** The files a -f argument stands for: the file, or a directory's *.yaml/*.yml/*.json, sorted. */
export function expandPaths(arg: string): string[] {
  if (arg === '-') return ['-'];
  let stat: fs.Stats;
  try {
    stat = fs.statSync(arg);
  } catch (err) {
    throw new ManifestError(`${arg}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  if (!stat.isDirectory()) return [arg];
  const files = fs
    .readdirSync(arg, { withFileTypes: true })
    .filter((d) => d.isFile() && EXTENSIONS.includes(path.extname(d.name).toLowerCase()))
    .map((d) => path.join(arg, d.name))
    .sort();
  if (files.length === 0) throw new ManifestError(`${arg}: no *.yaml, *.yml or *.json files in this directory`);
  return files;
}

function readText(file: string): string {
  if (file === '-') return fs.readFileSync(0, 'utf8');
  const size = fs.statSync(file).size;
  if (size > MAX_FILE_BYTES) throw new ManifestError(`${file}: ${size} bytes, more than the ${MAX_FILE_BYTES} a file may have`);
  return fs.readFileSync(file, 'utf8');
}

/** The documents of one file, as plain values, each with its position. */
export function readDocuments(file: string): { source: string; value: unknown }[] {
  const text = readText(file);
  const name = file === '-' ? '(stdin)' : file;
  if (path.extname(file).toLowerCase() === '.json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ManifestError(`${name}: malformed JSON: ${(err as Error).message}`);
    }
    // A JSON file holds one document, or a list of them.
    if (Array.isArray(value)) return value.map((v, i) => ({ source: `${name}, document ${i + 1}`, value: v }));
    return [{ source: name, value }];
  }
  let docs: unknown[];
  try {
    docs = jsYaml.loadAll(text, undefined, { schema: jsYaml.CORE_SCHEMA });
  } catch (err) {
    const e = err as { reason?: string; mark?: { line: number; column: number }; message: string };
    const where = e.mark ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '';
    throw new ManifestError(`${name}: malformed YAML${where}: ${e.reason ?? e.message}`);
  }
  const out: { source: string; value: unknown }[] = [];
  docs.forEach((value, i) => {
    // `---` with nothing after it is an empty document, not an error.
    if (value !== null && value !== undefined) out.push({ source: docs.length > 1 ? `${name}, document ${i + 1}` : name, value });
  });
  return out;
}

/** One document checked: envelope, then the spec against the kind's schema. */
export function toManifest(source: string, value: unknown): Manifest {
  const env = EnvelopeSchema.safeParse(value);
  if (!env.success) {
    const hint = value && typeof value === 'object' && !('kind' in value) ? ' (each document needs kind: Service or kind: Rollout, and spec)' : '';
    throw new ManifestError(`${source}: ${describeIssues(env.error)}${hint}`);
  }
  const { kind, name, spec } = env.data;
  const what = `${source} (${kind}${name ? ` ${name}` : ''})`;
  if (kind === 'Service') {
    if (!name) throw new ManifestError(`${what}: name: required for a Service`);
    const parsed = ServiceSchema.safeParse(spec);
    if (!parsed.success) throw new ManifestError(`${what}: ${describeIssues(parsed.error, ['spec'])}`);
    return { kind, name, spec: parsed.data, raw: spec, source };
  }
  const parsed = RolloutSpecSchema.safeParse(spec);
  if (!parsed.success) throw new ManifestError(`${what}: ${describeIssues(parsed.error, ['spec'])}`);
  if (name !== undefined && name !== parsed.data.service)
    throw new ManifestError(`${what}: name: "${name}" must equal spec.service "${parsed.data.service}" (a rollout is named after its service)`);
  return { kind, name: parsed.data.service, spec: parsed.data, raw: spec, source };
}

/** Every manifest under the -f arguments: Services first, then Rollouts, each in file order. */
export function loadManifests(args: string[]): Manifest[] {
  const all: Manifest[] = [];
  for (const arg of args) for (const file of expandPaths(arg)) for (const d of readDocuments(file)) all.push(toManifest(d.source, d.value));
  if (all.length === 0) throw new ManifestError(`${args.join(', ')}: no documents`);
  const seen = new Map<string, string>();
  for (const m of all) {
    const key = `${m.kind}/${m.name}`;
    const earlier = seen.get(key);
    if (earlier) throw new ManifestError(`${m.source}: ${m.kind} "${m.name}" is also declared in ${earlier}`);
    seen.set(key, m.source);
  }
  return [...all.filter((m) => m.kind === 'Service'), ...all.filter((m) => m.kind === 'Rollout')];
}

/**
 * The body for `services put -f` / `rollout create -f`: a file with one document, either an
 * envelope of the expected kind or the bare REST body (as before envelopes existed).
 */
export function loadBody(file: string, kind: 'Service' | 'Rollout'): { name?: string; body: Record<string, unknown> } {
  const docs = expandPaths(file).flatMap(readDocuments);
  if (docs.length !== 1) throw new ManifestError(`${file}: expected one document, found ${docs.length} (use sluice apply -f for several)`);
  const { source, value } = docs[0]!;
  if (value && typeof value === 'object' && !Array.isArray(value) && 'kind' in value) {
    const m = toManifest(source, value);
    if (m.kind !== kind) throw new ManifestError(`${source}: kind: ${m.kind}, expected ${kind}`);
    return { name: m.name, body: m.raw };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ManifestError(`${source}: expected an object (a ${kind} body)`);
  return { body: value as Record<string, unknown> };
}
