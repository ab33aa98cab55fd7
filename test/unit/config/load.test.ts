import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, optionEntries } from '../../../src/config/load.js';
import { redactConfig } from '../../../src/config/redact.js';
import { ConfigError } from '../../../src/errors.js';

async function tempFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-config-'));
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function issuesOf(promise: Promise<unknown>): Promise<ConfigError['issues']> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as ConfigError).issues;
}

describe('loadConfig', () => {
  it('gives the embedded single-node defaults with no sources', async () => {
    const config = await loadConfig({ env: {} });
    expect(config.api.listen).toBe('127.0.0.1:8776');
    expect(config.ops.listen).toBe('127.0.0.1:9776');
    expect(config.dataDir).toBe('./var');
    expect(config.etcd.endpoints).toEqual([]);
    expect(config.amqp.url).toBe('');
    expect(config.leaseTtlMs).toBe(10_000);
    expect(Object.isFrozen(config.etcd)).toBe(true);
  });

  it('merges defaults < file < environment < flags', async () => {
    const file = await tempFile('c.yaml', 'leaseTtlMs: 20000\ndataDir: /from-file\nlog:\n  level: debug\ncluster: filecluster\n');
    const config = await loadConfig({
      file,
      env: { HEARTH_DATA_DIR: '/from-env', HEARTH_CLUSTER: 'envcluster' },
      flags: { cluster: 'flagcluster' },
    });
    expect(config.leaseTtlMs).toBe(20_000);
    expect(config.log.level).toBe('debug');
    expect(config.dataDir).toBe('/from-env');
    expect(config.cluster).toBe('flagcluster');
  });

  it('reads JSON files and HEARTH_CONFIG', async () => {
    const file = await tempFile('c.json', JSON.stringify({ etcd: { prefix: '/x' } }));
    const config = await loadConfig({ env: { HEARTH_CONFIG: file } });
    expect(config.etcd.prefix).toBe('/x');
  });

  it('converts env text by the option type', async () => {
    const config = await loadConfig({
      env: {
        HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379, http://127.0.0.1:2380',
        HEARTH_AMQP_URL: 'amqp://u:p@127.0.0.1:5672/v',
        HEARTH_LEASE_TTL_MS: '6000',
        HEARTH_DRIVER_FAKE_FAILURE_RATE: '0.25',
        HEARTH_ROLES: 'worker',
      },
    });
    expect(config.etcd.endpoints).toEqual(['http://127.0.0.1:2379', 'http://127.0.0.1:2380']);
    expect(config.leaseTtlMs).toBe(6000);
    expect(config.driver.fakeFailureRate).toBe(0.25);
    expect(config.roles).toEqual(['worker']);
  });

  it('reports every problem at once, each with its path and env name', async () => {
    const issues = await issuesOf(
      loadConfig({ env: { HEARTH_LEASE_TTL_MS: 'abc', HEARTH_API_LISTEN: 'nowhere', HEARTH_NOPE: '1', HEARTH_LOG_LEVEL: 'loud' } }),
    );
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(Object.keys(byPath).sort()).toEqual(['HEARTH_NOPE', 'api.listen', 'leaseTtlMs', 'log.level']);
    expect(byPath.leaseTtlMs?.env).toBe('HEARTH_LEASE_TTL_MS');
    expect(byPath.leaseTtlMs?.message).toContain('"abc"');
  });

  it('rejects unknown keys and wrong types in a file', async () => {
    const file = await tempFile('c.yaml', 'leaseTtlMs: true\nbogus: 1\netcd:\n  nope: 2\n');
    const issues = await issuesOf(loadConfig({ file, env: {} }));
    expect(issues.map((i) => i.path).sort()).toEqual(['bogus', 'etcd.nope', 'leaseTtlMs']);
  });

  it('names an unreadable file', async () => {
    const issues = await issuesOf(loadConfig({ file: '/nonexistent/hearth.yaml', env: {} }));
    expect(issues[0]?.message).toContain('/nonexistent/hearth.yaml');
  });

  it('enforces ranges and cross-field rules', async () => {
    expect((await issuesOf(loadConfig({ env: { HEARTH_LEASE_TTL_MS: '500' } })))[0]?.path).toBe('leaseTtlMs');
    expect((await issuesOf(loadConfig({ env: { HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' } })))[0]?.path).toBe('amqp.url');
    expect((await issuesOf(loadConfig({ env: { HEARTH_LEASE_MARGIN_MS: '5000' } })))[0]?.path).toBe('leaseMarginMs');
  });

  it('refuses a negative, absurd or non-numeric over-subscription ratio, reserved percentage or alert threshold, naming the option', async () => {
    const pathOf = async (env: Record<string, string>): Promise<string[]> => (await issuesOf(loadConfig({ env }))).map((i) => i.path);
    for (const ratio of ['-1', '0', '0.5', '1e9', 'NaN', 'Infinity', 'lots']) expect(await pathOf({ HEARTH_DRIVER_MAX_OVER_SUBSCRIPTION_RATIO: ratio }), ratio).toEqual(['driver.maxOverSubscriptionRatio']);
    for (const pct of ['-5', '101', '12.5', 'x']) expect(await pathOf({ HEARTH_DRIVER_RESERVED_PERCENTAGE: pct }), pct).toEqual(['driver.reservedPercentage']);
    expect(await pathOf({ HEARTH_ALERTS_BACKEND_NEARLY_FULL_PERCENT: '0' })).toEqual(['alerts.backendNearlyFullPercent']);
    expect(await pathOf({ HEARTH_ALERTS_OPERATION_STUCK_MS: '-1' })).toEqual(['alerts.operationStuckMs']);
    const ok = await loadConfig({ env: { HEARTH_DRIVER_MAX_OVER_SUBSCRIPTION_RATIO: '1.5', HEARTH_DRIVER_RESERVED_PERCENTAGE: '10', HEARTH_ALERTS_BACKEND_NEARLY_FULL_PERCENT: '85' } });
    expect([ok.driver.maxOverSubscriptionRatio, ok.driver.reservedPercentage, ok.alerts.backendNearlyFullPercent]).toEqual([1.5, 10, 85]);
  });

  it('ignores HEARTH_TEST_* variables and HEARTH_KEEP_TEST_DIRS, which belong to the test harness', async () => {
    await expect(loadConfig({ env: { HEARTH_TEST_ETCD_ENDPOINTS: 'x' } })).resolves.toBeDefined();
    await expect(loadConfig({ env: { HEARTH_KEEP_TEST_DIRS: '1' } })).resolves.toBeDefined();
  });

  it('declares every option with a doc line, and env names in upper snake case', () => {
    for (const entry of optionEntries) {
      expect(entry.spec.doc.length, entry.path).toBeGreaterThan(10);
      expect(entry.env).toMatch(/^HEARTH_[A-Z0-9_]+$/);
    }
    expect(optionEntries.find((e) => e.path === 'dataDir')?.env).toBe('HEARTH_DATA_DIR');
    expect(optionEntries.find((e) => e.path === 'etcd.endpoints')?.env).toBe('HEARTH_ETCD_ENDPOINTS');
  });
});

describe('redactConfig', () => {
  it('hides passwords and URL credentials', async () => {
    const config = await loadConfig({
      env: {
        HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379',
        HEARTH_ETCD_USERNAME: 'hearth',
        HEARTH_ETCD_PASSWORD: 's3cret',
        HEARTH_AMQP_URL: 'amqp://user:hunter2@127.0.0.1:5672/vh',
      },
    });
    const text = JSON.stringify(redactConfig(config));
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('hunter2');
    expect(text).toContain('amqp://user:[REDACTED]@127.0.0.1:5672/vh');
    expect(config.etcd.password).toBe('s3cret');
  });
});
