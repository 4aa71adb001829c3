// The tokens file: YAML or JSON, hashes only, and errors that name the line or field without
// repeating what is in the file.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTokensFile, sha256Hex } from '../../src/api/tokens.js';
import { startTestSluice, tempDir } from '../support/sluice.js';

const H = sha256Hex('a-token');
const H2 = sha256Hex('another-token');

describe('tokens file', () => {
  it('reads YAML and JSON alike, hashes compared in lower case', () => {
    const yaml = `tokens:\n  - name: alice\n    role: operator\n    sha256: ${H.toUpperCase()}\n`;
    const json = JSON.stringify({ tokens: [{ name: 'alice', role: 'operator', sha256: H }] });
    expect(parseTokensFile(yaml)).toEqual([{ name: 'alice', role: 'operator', sha256: H }]);
    expect(parseTokensFile(json)).toEqual(parseTokensFile(yaml));
    expect(parseTokensFile('tokens: []', 'legacy')).toEqual([{ name: 'admin', role: 'admin', sha256: sha256Hex('legacy') }]);
  });

  it.each<[string, string, RegExp]>([
    ['a role that does not exist', `tokens: [{name: a, role: root, sha256: ${H}}]`, /^tokens\[0\]\.role: /],
    ['a token instead of its hash', 'tokens: [{name: a, role: admin, sha256: my-plain-token}]', /^tokens\[0\]\.sha256: must be the 64 hex digits of the SHA-256 of the token \(printf %s "\$TOKEN" \| sha256sum\)$/],
    ['an unknown field', `tokens: [{name: a, role: admin, sha256: ${H}, token: x}]`, /^tokens\[0\]: Unrecognized key/],
    ['a name used twice', `tokens: [{name: a, role: admin, sha256: ${H}}, {name: a, role: viewer, sha256: ${H2}}]`, /^tokens\[1\]\.name: "a" is used twice$/],
    ['a token listed twice', `tokens: [{name: a, role: admin, sha256: ${H}}, {name: b, role: viewer, sha256: ${H}}]`, /^tokens\[1\]\.sha256: the same token is listed twice$/],
    ['a name Sluice writes itself', `tokens: [{name: analysis, role: admin, sha256: ${H}}]`, /^tokens\[0\]\.name: "analysis" is what Sluice itself writes/],
    ['no tokens list', 'users: []', /^\(file\): Unrecognized key|^tokens: /],
    ['not YAML', `tokens:\n  - {name: a, role: admin, sha256: ${H}\n`, /^not YAML or JSON \(line \d+\): /],
  ])('refuses %s', (_what, text, message) => {
    let error = '';
    try {
      parseTokensFile(text);
    } catch (err) {
      error = (err as Error).message;
    }
    expect(error).toMatch(message);
    expect(error).not.toContain(H); // a hash is not repeated in an error (it goes to the log)
  });

  it('refuses a file token named like --api-token', () => {
    expect(() => parseTokensFile(`tokens: [{name: admin, role: viewer, sha256: ${H}}]`, 'legacy')).toThrow('"admin" is used twice (--api-token is named "admin")');
  });

  it('stops the start-up when the file is missing or invalid', async () => {
    const dir = tempDir('sluice-tokens-');
    await expect(startTestSluice({ apiTokens: path.join(dir, 'missing.yaml') })).rejects.toThrow(/^--api-tokens .*missing\.yaml: ENOENT/);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'tokens: [{name: a, role: root, sha256: x}]');
    await expect(startTestSluice({ apiTokens: bad })).rejects.toThrow(/bad\.yaml: tokens\[0\]\.role: .*tokens\[0\]\.sha256: /);
  });
});
