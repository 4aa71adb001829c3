import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';

describe('analysis and alert options', () => {
  it('default to 5 s load reports and no webhook', () => {
    expect(parseConfig([], {})).toMatchObject({ lrsInterval: '5s', webhookFormat: 'json' });
    expect(parseConfig([], {}).webhookUrl).toBeUndefined();
  });

  it('come from flags or SLUICE_* variables', () => {
    expect(parseConfig(['--lrs-interval', '1s', '--webhook-url', 'https://hooks.example/x', '--webhook-format', 'slack'], {})).toMatchObject({
      lrsInterval: '1s',
      webhookUrl: 'https://hooks.example/x',
      webhookFormat: 'slack',
    });
    expect(parseConfig([], { SLUICE_WEBHOOK_URL: 'http://127.0.0.1:9/hook', SLUICE_LRS_INTERVAL: '2s' })).toMatchObject({
      webhookUrl: 'http://127.0.0.1:9/hook',
      lrsInterval: '2s',
    });
  });

  it('name the flag at fault', () => {
    expect(() => parseConfig(['--webhook-url', 'ftp://x'], {})).toThrow(/^--webhook-url: /);
    expect(() => parseConfig(['--webhook-format', 'teams'], {})).toThrow(/^--webhook-format: /);
    expect(() => parseConfig(['--lrs-interval', '5'], {})).toThrow(/^--lrs-interval: invalid duration/);
  });
});
