// Files that ship beside the code (package.json, vendor/), found by walking up from this file:
// it runs from src/api (tests, tsx) and from dist/src/api (the build).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest directory above this file that holds `name`. */
export function findAbove(name: string): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
    if (path.dirname(dir) === dir) throw new Error(`${name} not found above ${fileURLToPath(import.meta.url)}`);
  }
}

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(findAbove('package.json'), 'utf8')) as { version: string }).version;
}
