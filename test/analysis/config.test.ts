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

describe('security options', () => {
  it('take Prometheus providers as repeated NAME=URL flags or a comma-separated variable', () => {
    expect(parseConfig([], {}).prometheus).toEqual({});
    expect(parseConfig(['--prometheus', 'main=http://prom:9090', '--prometheus', 'long=https://thanos.example/api'], {}).prometheus).toEqual({
      main: 'http://prom:9090',
      long: 'https://thanos.example/api',
    });
    expect(parseConfig([], { SLUICE_PROMETHEUS: 'main=http://prom:9090, long=https://thanos.example' }).prometheus).toEqual({
      main: 'http://prom:9090',
      long: 'https://thanos.example',
    });
  });

  it('explain a bad provider without repeating its URL', () => {
    expect(() => parseConfig(['--prometheus', 'http://prom:9090'], {})).toThrow('--prometheus: expected NAME=URL');
    expect(() => parseConfig(['--prometheus', 'a=http://x', '--prometheus', 'a=http://y'], {})).toThrow('provider "a" is given twice');
    expect(() => parseConfig(['--prometheus', 'a=ftp://user:pw@x'], {})).toThrow(/^--prometheus: provider "a": the URL must be http:\/\/ or https:\/\/$/);
    expect(() => parseConfig(['--prometheus', 'a b=http://x'], {})).toThrow('provider name "a b"');
  });

  it('read tokens file, audit log, --metrics-public and the webhook secret', () => {
    expect(parseConfig(['--api-tokens', '/etc/sluice/tokens.yaml', '--audit-log', '/var/log/sluice/audit.log', '--metrics-public', '--webhook-secret', 'x'.repeat(32)], {})).toMatchObject({
      apiTokens: '/etc/sluice/tokens.yaml',
      auditLog: '/var/log/sluice/audit.log',
      metricsPublic: true,
      webhookSecret: 'x'.repeat(32),
    });
    expect(parseConfig([], {}).metricsPublic).toBe(false);
    expect(parseConfig([], { SLUICE_METRICS_PUBLIC: 'true', SLUICE_WEBHOOK_SECRET: 'y'.repeat(16) })).toMatchObject({ metricsPublic: true, webhookSecret: 'y'.repeat(16) });
    expect(parseConfig([], { SLUICE_METRICS_PUBLIC: '0' }).metricsPublic).toBe(false);
    expect(() => parseConfig([], { SLUICE_METRICS_PUBLIC: 'maybe' })).toThrow('--metrics-public: must be true, false, 1 or 0');
    expect(() => parseConfig(['--webhook-secret', 'short'], {})).toThrow('--webhook-secret: must be at least 16 characters');
  });
});
