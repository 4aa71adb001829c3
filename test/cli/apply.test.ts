// `sluice apply -f FILE|DIR` against a real server: create, update, no-op, dry run, directories,
// multi-document YAML, JSON lists, bad files, and a conflicting active rollout.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestSluice } from '../support/sluice.js';
import { startTestSluice, tempDir } from '../support/sluice.js';
import { sluiceCli } from './run-cli.js';

const EXAMPLES = path.resolve('examples');

function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('sluice apply', { timeout: 180_000 }, () => {
  let sluice: TestSluice;
  let server: string;
  const apply = (...args: string[]) => sluiceCli(['apply', ...args, '--server', server]);

  beforeAll(async () => {
    sluice = await startTestSluice();
    server = `http://127.0.0.1:${sluice.httpPort}`;
  });
  afterAll(async () => sluice?.stop());

  it('applies examples/: dry run, create, then unchanged; an edit is shown as a field diff', async () => {
    const dry = await apply('-f', EXAMPLES, '--dry-run');
    expect(dry).toMatchObject({ code: 0, stdout: 'service/echo created (dry run)\nrollout/echo created (dry run)\n' });
    expect((await sluice.api('GET', '/v1/services')).body.services).toEqual([]);

    expect(await apply('-f', EXAMPLES)).toMatchObject({ code: 0, stdout: 'service/echo created\nrollout/echo created\n' });
    const svc = (await sluice.api('GET', '/v1/services/echo')).body;
    expect(svc).toMatchObject({ name: 'echo', stable: 'v1', timeout: '2s' });
    const rollout = (await sluice.api('GET', '/v1/rollouts/echo')).body;
    expect(rollout.spec.headerRoutes[0].name).toBe('testers');
    expect(rollout.spec.steps.find((s: { analysis?: unknown }) => s.analysis)).toBeTruthy();
    expect(rollout.history[0].by).toMatch(/^cli:/);

    const again = await apply('-f', EXAMPLES);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^service\/echo unchanged\nrollout\/echo unchanged: (Progressing|Paused), step \d\/6\n$/);

    // The service edited: the dry run names each changed field and changes nothing.
    const dir = tempDir();
    const edited = fs.readFileSync(path.join(EXAMPLES, 'service-echo.yaml'), 'utf8').replace('port: 50052', 'port: 50053').replace('timeout: 2s', 'timeout: 3s');
    write(dir, 'service.yaml', edited);
    const diff = await apply('-f', path.join(dir, 'service.yaml'), '--dry-run');
    expect(diff).toMatchObject({
      code: 0,
      stdout: 'service/echo updated (dry run)\n  timeout: "2s" → "3s"\n  versions.v2.endpoints[0].port: 50052 → 50053\n',
    });
    expect((await sluice.api('GET', '/v1/services/echo')).body.timeout).toBe('2s');
    const json = JSON.parse((await apply('-f', path.join(dir, 'service.yaml'), '-o', 'json')).stdout);
    expect(json).toEqual({
      dryRun: false,
      results: [
        {
          kind: 'Service',
          name: 'echo',
          source: path.join(dir, 'service.yaml'),
          action: 'updated',
          changes: [
            { field: 'timeout', from: '2s', to: '3s' },
            { field: 'versions.v2.endpoints[0].port', from: 50052, to: 50053 },
          ],
        },
      ],
    });
    expect((await sluice.api('GET', '/v1/services/echo')).body.versions.v2.endpoints[0].port).toBe(50053);
  });

  it('refuses a different rollout while one is active (exit 2), and says how to go on', async () => {
    const dir = tempDir();
    write(dir, 'rollout.yaml', fs.readFileSync(path.join(EXAMPLES, 'rollout-echo.yaml'), 'utf8').replace('setWeight: 60', 'setWeight: 70'));
    const r = await apply('-f', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path.join(dir, 'rollout.yaml')} (Rollout echo): service "echo" has an active rollout`);
    expect(r.stderr).toContain('spec.steps[5].setWeight');
    expect(r.stderr).toContain('sluice rollout promote echo --full, or sluice rollout rollback echo');
    // After a rollback the same file is unchanged (a rolled-back rollout is not restarted) ...
    expect((await sluice.api('POST', '/v1/rollouts/echo/rollback', { reason: 'test' })).status).toBe(200);
    expect((await apply('-f', EXAMPLES)).stdout).toMatch(/rollout\/echo unchanged: RolledBack/);
    // ... and the edited one starts a new rollout.
    const created = await apply('-f', dir);
    expect(created).toMatchObject({ code: 0 });
    expect(created.stdout).toMatch(/^rollout\/echo created: replaces the RolledBack rollout \S+\n$/);
    expect((await sluice.api('GET', '/v1/rollouts/echo')).body.spec.steps[5]).toEqual({ setWeight: 70 });
  });

  it('keeps the stable version a promotion set, instead of sending traffic back with an old file', async () => {
    expect((await sluice.api('POST', '/v1/rollouts/echo/promote', { full: true })).status).toBe(200);
    expect((await sluice.api('GET', '/v1/services/echo')).body.stable).toBe('v2');
    const r = await apply('-f', path.join(EXAMPLES, 'service-echo.yaml'), '--dry-run');
    expect(r.code).toBe(0);
    // The file still says stable: v1, the version before the rollout.
    expect(r.stdout).toMatch(/^service\/echo unchanged \(dry run\): stable stays v2 \(promoted by rollout \S+\); set stable: v2 in \S+service-echo\.yaml to silence this\n$/);
    // With another change, the update keeps v2 too.
    const dir = tempDir();
    write(dir, 'service.yaml', fs.readFileSync(path.join(EXAMPLES, 'service-echo.yaml'), 'utf8').replace('timeout: 2s', 'timeout: 4s'));
    expect((await apply('-f', dir)).stdout).toMatch(/^service\/echo updated: stable stays v2 .*\n {2}timeout: "2s" → "4s"\n$/);
    expect((await sluice.api('GET', '/v1/services/echo')).body).toMatchObject({ stable: 'v2', timeout: '4s' });
  });

  it('reads a directory (sorted, services first), multi-document YAML and JSON lists', async () => {
    const dir = tempDir();
    // a-rollout sorts first, but its service must exist first: services are applied before rollouts.
    write(
      dir,
      'a-rollout.yml',
      '# two rollouts in one file\nkind: Rollout\nspec: { service: web, canary: v2, steps: [ { setWeight: 10 }, { pause: {} } ] }\n---\n' +
        'kind: Rollout\nname: api\nspec: { service: api, canary: b, steps: [ { setWeight: 50 } ] }\n---\n',
    );
    write(
      dir,
      'b-services.json',
      JSON.stringify([
        { kind: 'Service', name: 'web', spec: { versions: { v1: { endpoints: [{ address: '127.0.0.1', port: 1 }] }, v2: { endpoints: [{ address: '127.0.0.1', port: 2 }] } }, stable: 'v1' } },
        { apiVersion: 'sluice/v1', kind: 'Service', name: 'api', spec: { versions: { a: { endpoints: [{ address: '::1', port: 3 }] }, b: { endpoints: [{ address: '::1', port: 4 }] } }, stable: 'a' } },
      ]),
    );
    write(dir, 'notes.txt', 'not a manifest: ignored');
    const r = await apply('-f', dir);
    expect(r).toMatchObject({ code: 0, stdout: 'service/web created\nservice/api created\nrollout/web created\nrollout/api created\n' });
    expect((await sluice.api('GET', '/v1/rollouts/api')).body.canary).toBe('b');
    // Several -f arguments, YAML output.
    const y = await apply('-f', path.join(dir, 'b-services.json'), '-f', path.join(dir, 'a-rollout.yml'), '-o', 'yaml');
    expect(y.code).toBe(0);
    expect(y.stdout).toMatch(/^dryRun: false\nresults:\n {2}- kind: Service\n {4}name: web\n/);
    expect(y.stdout.match(/action: unchanged/g), y.stdout).toHaveLength(4);
  });

  it('names the file, the document and the field of a bad document, and sends nothing (exit 1)', async () => {
    const dir = tempDir();
    const cases: [string, string, string][] = [
      ['weight.yaml', 'kind: Service\nname: good\nspec: { versions: { v1: { endpoints: [ { address: 127.0.0.1, port: 1 } ] } }, stable: v1 }\n---\nkind: Rollout\nspec: { service: good, canary: v1, steps: [ { setWeight: 101 } ] }\n', 'weight.yaml, document 2 (Rollout): spec.steps[0].setWeight: '],
      ['kind.yaml', 'kind: Deployment\nname: x\nspec: {}\n', "kind.yaml: kind: Invalid option: expected one of \"Service\"|\"Rollout\""],
      ['nokind.yaml', 'versions: {}\nstable: v1\n', 'nokind.yaml: kind: '],
      ['noname.yaml', 'kind: Service\nspec: { versions: { v1: { endpoints: [ { address: 127.0.0.1, port: 1 } ] } }, stable: v1 }\n', 'noname.yaml (Service): name: required for a Service'],
      ['typo.yaml', 'kind: Service\nname: t\nspec: { versions: { v1: { endpoints: [ { address: 127.0.0.1, port: 1 } ] } }, stable: v1, timout: 2s }\n', 'typo.yaml (Service t): spec.timout: '],
      ['broken.yaml', 'kind: Service\nname: [oops\n', 'broken.yaml: malformed YAML at line 3, column 1: '],
      ['broken.json', '{"kind": "Service",}', 'broken.json: malformed JSON: '],
      ['canary.yaml', 'kind: Rollout\nspec: { service: api, canary: v9, steps: [ { setWeight: 5 } ] }\n', 'canary.yaml (Rollout api): spec.canary: "v9" is not a version of service "api" (a, b)'],
      ['missing.yaml', 'kind: Rollout\nspec: { service: nothere, canary: v2, steps: [ { setWeight: 5 } ] }\n', 'spec.service: service "nothere" does not exist'],
      ['mismatch.yaml', 'kind: Rollout\nname: a\nspec: { service: b, canary: v2, steps: [ { setWeight: 5 } ] }\n', 'name: "a" must equal spec.service "b"'],
    ];
    const before = (await sluice.api('GET', '/v1/services')).body.services.length;
    const results = await Promise.all(cases.map(([name, text]) => apply('-f', write(dir, name, text))));
    cases.forEach(([name, , message], i) => {
      expect(results[i]!.code, name).toBe(1);
      expect(results[i]!.stderr, name).toMatch(new RegExp(`^error: ${dir}/`));
      expect(results[i]!.stderr, name).toContain(message);
    });
    for (const [name] of cases) fs.unlinkSync(path.join(dir, name));
    // The same document twice, and an empty directory.
    write(dir, 'one.yaml', 'kind: Service\nname: dup\nspec: { versions: { v1: { endpoints: [ { address: 127.0.0.1, port: 1 } ] } }, stable: v1 }\n');
    write(dir, 'two.yaml', 'kind: Service\nname: dup\nspec: { versions: { v1: { endpoints: [ { address: 127.0.0.1, port: 2 } ] } }, stable: v1 }\n');
    expect((await apply('-f', dir)).stderr).toContain(`two.yaml: Service "dup" is also declared in ${path.join(dir, 'one.yaml')}`);
    expect((await apply('-f', tempDir())).stderr).toContain('no *.yaml, *.yml or *.json files in this directory');
    expect((await sluice.api('GET', '/v1/services')).body.services.length).toBe(before);
  });
});
