// Credentials in URLs: redacted wherever they can surface, refused where they would not work
// (etcd.endpoints), and never echoed by a configuration error.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { loadConfig } from '../../../src/config/load.js';
import { redactConfig, redactUrl } from '../../../src/config/redact.js';
import { ConfigError } from '../../../src/errors.js';

const CLUSTER = { HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379', HEARTH_AMQP_URL: 'amqp://u:p@127.0.0.1:5672/vh' };

async function configError(env: Record<string, string>): Promise<ConfigError> {
  const err = await loadConfig({ env }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('redactUrl', () => {
  it('removes passwords with or without a scheme, as libraries write targets', () => {
    expect(redactUrl('14 UNAVAILABLE: name resolution failed for target dns:user:s3cret@etcd-0:2379')).toBe('14 UNAVAILABLE: name resolution failed for target dns:[REDACTED]@etcd-0:2379');
    expect(redactUrl('connect to user:s3cret@host:5672 failed')).toBe('connect to user:[REDACTED]@host:5672 failed');
    expect(redactUrl('amqp://u:p/a;s,s(w)@host/vh')).toBe('amqp://u:[REDACTED]@host/vh');
    expect(redactUrl('amqp://u:p@ss@host/vh')).toBe('amqp://u:[REDACTED]@host/vh');
    expect(redactUrl('{"url":"http://u:s3cret@h"}')).toBe('{"url":"http://u:[REDACTED]@h"}');
  });

  it('keeps what holds no password', () => {
    for (const text of ['amqps://hearth@rabbit:5671/vh', 'host node1@rbd#pool', 'volume 3f0c owned by w1@fake', 'no at sign: a:b']) expect(redactUrl(text)).toBe(text);
  });
});

describe('etcd.endpoints with credentials', () => {
  it('is a configuration error naming etcd.username and etcd.passwordFile, without the password', async () => {
    const err = await configError({ ...CLUSTER, HEARTH_ETCD_ENDPOINTS: 'http://user:s3cret@127.0.0.1:2379,http://127.0.0.1:2380' });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ path: 'etcd.endpoints', message: expect.stringContaining('etcd.username and etcd.passwordFile') as string });
    expect(err.message).toContain('http://user:[REDACTED]@127.0.0.1:2379');
    expect(err.message).not.toContain('s3cret');
  });
});

describe('hearth config check', () => {
  async function check(env: Record<string, string>): Promise<{ code: number; text: string }> {
    let text = '';
    const code = await runCli(['config', 'check'], { out: (t) => void (text += t), err: (t) => void (text += t) }, env);
    return { code, text };
  }

  it('refuses a credentialed etcd endpoint with exit 2, printing no password', async () => {
    const res = await check({ ...CLUSTER, HEARTH_ETCD_ENDPOINTS: 'http://user:s3cret@127.0.0.1:2379' });
    expect(res.code).toBe(2);
    expect(res.text).toContain('etcd.username and etcd.passwordFile');
    expect(res.text).not.toContain('s3cret');
  });

  it('fails, as serve does, on a token file that serve would refuse', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-check-'));
    await writeFile(join(dir, 'token'), 'short\n');
    const res = await check({ HEARTH_API_TOKEN_FILE: join(dir, 'token') });
    expect(res.code).toBe(2);
    expect(res.text).toContain('api.tokenFile');
    expect((await check({ HEARTH_API_TOKEN_FILE: join(dir, 'missing') })).code).toBe(2);
  });
});

describe('configuration errors', () => {
  it('never echo a secret option, nor a password in any URL-like value', async () => {
    const err = await configError({ ...CLUSTER, HEARTH_ETCD_ENDPOINTS: 'ftp://user:s3cret@h/x', HEARTH_LEASE_TTL_MS: 'amqp://a:s3cret2@h' });
    expect(err.message).not.toMatch(/s3cret/);
    expect(err.message).toContain('[REDACTED]');
  });

  it('redact URL credentials in every option when the configuration is printed', async () => {
    const config = await loadConfig({ env: { ...CLUSTER, HEARTH_API_PUBLIC_URL: '' } });
    expect(JSON.stringify(redactConfig(config))).not.toContain(':p@');
  });

  it('refuse headersTimeoutMs above requestTimeoutMs', async () => {
    const err = await configError({ HEARTH_API_REQUEST_TIMEOUT_MS: '5000', HEARTH_API_HEADERS_TIMEOUT_MS: '6000' });
    expect(err.issues[0]?.path).toBe('api.headersTimeoutMs');
  });
});

describe('token files', () => {
  it('are read by the configuration check as serve reads them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-tokens-'));
    const short = join(dir, 'short');
    await writeFile(short, 'too-short\n');
    const spaced = join(dir, 'spaced');
    await writeFile(spaced, 'a token with spaces in it\n');
    const good = join(dir, 'good');
    await writeFile(good, 'a-token-that-is-long-enough\n');
    for (const [file, why] of [[join(dir, 'missing'), /cannot be read \(no such file, ENOENT\)/], [short, /at least 16 characters/], [spaced, /printable ASCII/]] as const) {
      const err = await configError({ HEARTH_API_TOKEN_FILE: file });
      expect(err.issues[0]).toMatchObject({ path: 'api.tokenFile', message: expect.stringMatching(why) as string });
      expect(err.message).not.toContain('too-short');
    }
    expect((await configError({ HEARTH_API_TOKEN_FILE: good, HEARTH_API_READER_TOKEN_FILE: short })).issues[0]?.path).toBe('api.readerTokenFile');
    await expect(loadConfig({ env: { HEARTH_API_TOKEN_FILE: good } })).resolves.toBeDefined();
    // Only where the API runs with tokens: a worker does not read them.
    await expect(loadConfig({ env: { HEARTH_API_TOKEN_FILE: short, HEARTH_ROLES: 'worker' } })).resolves.toBeDefined();
  });
});
