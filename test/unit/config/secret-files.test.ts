import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { redactConfig, redactUrl } from '../../../src/config/redact.js';
import { MAX_SECRET_FILE_BYTES, parseSecret, readSecretFile } from '../../../src/config/secret-file.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { ConfigError } from '../../../src/errors.js';

const SECRET = 'pw-7f3c9a1e-correct horse';
let dir: string;
let good: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-secret-files-'));
  good = join(dir, 'password');
  await writeFile(good, `${SECRET}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function issuesOf(promise: Promise<unknown>): Promise<ConfigError['issues']> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).not.toContain(SECRET);
  return (err as ConfigError).issues;
}

const CLUSTER = { HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379', HEARTH_AMQP_URL: 'amqps://hearth@127.0.0.1:5671/hearth' };

describe('parseSecret', () => {
  it('drops one trailing newline (LF or CRLF) and keeps everything else, spaces included', () => {
    expect(parseSecret(Buffer.from('abc\n'))).toEqual({ ok: true, secret: 'abc' });
    expect(parseSecret(Buffer.from('abc\r\n'))).toEqual({ ok: true, secret: 'abc' });
    expect(parseSecret(Buffer.from(' a b '))).toEqual({ ok: true, secret: ' a b ' });
    expect(parseSecret(Buffer.from('pässwörd'))).toEqual({ ok: true, secret: 'pässwörd' });
  });

  it('refuses empty, multi-line and oversized files without quoting them', () => {
    expect(parseSecret(Buffer.from(''))).toEqual({ ok: false, problem: 'is empty' });
    expect(parseSecret(Buffer.from('\n'))).toEqual({ ok: false, problem: 'is empty' });
    const twoLines = parseSecret(Buffer.from('line-one\nline-two\n'));
    expect(twoLines.ok).toBe(false);
    expect(JSON.stringify(twoLines)).not.toContain('line-one');
    expect(parseSecret(Buffer.alloc(MAX_SECRET_FILE_BYTES + 1, 'x')).ok).toBe(false);
  });

  it('says why a file cannot be read, by its errno', async () => {
    expect(await readSecretFile(join(dir, 'missing'))).toEqual({ ok: false, problem: 'cannot be read (no such file, ENOENT)' });
    expect(await readSecretFile(dir)).toEqual({ ok: false, problem: 'cannot be read (it is a directory, EISDIR)' });
  });
});

describe('etcd.passwordFile', () => {
  it('is accepted with etcd.username and checked at load; config check shows the file, not the secret', async () => {
    const config = await loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/', HEARTH_ETCD_USERNAME: 'hearth', HEARTH_ETCD_PASSWORD_FILE: good } });
    expect(config.etcd.passwordFile).toBe(good);
    expect(config.etcd.password).toBe('');
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).toContain(good);
    expect(printed).not.toContain(SECRET);
  });

  it('is a configuration error when missing, empty or unreadable, naming the option and the file', async () => {
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    const env = { ...CLUSTER, HEARTH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/', HEARTH_ETCD_USERNAME: 'hearth' };
    for (const [file, problem] of [
      [join(dir, 'missing'), 'no such file'],
      [empty, 'is empty'],
    ] as const) {
      const issues = await issuesOf(loadConfig({ env: { ...env, HEARTH_ETCD_PASSWORD_FILE: file } }));
      expect(issues).toEqual([{ path: 'etcd.passwordFile', env: 'HEARTH_ETCD_PASSWORD_FILE', message: expect.stringContaining(problem) as unknown }]);
      expect(issues[0]?.message).toContain(file);
    }
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked');
      await writeFile(locked, SECRET);
      await chmod(locked, 0o000);
      const issues = await issuesOf(loadConfig({ env: { ...env, HEARTH_ETCD_PASSWORD_FILE: locked } }));
      expect(issues[0]?.message).toContain('permission denied');
    }
  });

  it('is not read when secretFiles is skip (API clients, checks of another machine\'s configuration)', async () => {
    const config = await loadConfig({
      env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/', HEARTH_ETCD_USERNAME: 'hearth', HEARTH_ETCD_PASSWORD_FILE: join(dir, 'missing') },
      secretFiles: 'skip',
    });
    expect(config.etcd.passwordFile).toBe(join(dir, 'missing'));
  });

  it('cannot be combined with etcd.password, and needs etcd.username', async () => {
    const both = await issuesOf(
      loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/', HEARTH_ETCD_USERNAME: 'hearth', HEARTH_ETCD_PASSWORD: SECRET, HEARTH_ETCD_PASSWORD_FILE: good } }),
    );
    expect(both.map((i) => i.message)).toEqual(['set etcd.password or etcd.passwordFile, not both']);
    const noUser = await issuesOf(loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/', HEARTH_ETCD_PASSWORD_FILE: good } }));
    expect(noUser).toEqual([{ path: 'etcd.username', env: 'HEARTH_ETCD_USERNAME', message: 'etcd.username and etcd.password (or etcd.passwordFile) go together' }]);
    const noPassword = await issuesOf(loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/', HEARTH_ETCD_USERNAME: 'hearth' } }));
    expect(noPassword.map((i) => i.path)).toEqual(['etcd.passwordFile']);
  });

  it('gives the etcd client the password from the file, and a ConfigError if the file went away', () => {
    const base = { endpoints: ['http://127.0.0.1:1'], prefix: '/p', username: 'hearth', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 100 };
    const client = createEtcdClient({ ...base, passwordFile: good });
    client.close();
    expect(() => createEtcdClient({ ...base, passwordFile: join(dir, 'gone') })).toThrow(ConfigError);
  });
});

describe('amqp.passwordFile', () => {
  it('goes with a user in amqp.url and no password there; config check shows the file, not the secret', async () => {
    const config = await loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_PASSWORD_FILE: good } });
    expect(config.amqp.passwordFile).toBe(good);
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).toContain('amqps://hearth@127.0.0.1:5671/hearth');
    expect(printed).not.toContain(SECRET);
  });

  it('is refused beside a password in the URL, without a user in the URL, or without a URL', async () => {
    const inUrl = await issuesOf(loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqps://hearth:other@127.0.0.1:5671/hearth', HEARTH_AMQP_PASSWORD_FILE: good } }));
    expect(inUrl).toEqual([{ path: 'amqp.passwordFile', env: 'HEARTH_AMQP_PASSWORD_FILE', message: 'amqp.url holds a password too; keep it in amqp.passwordFile only' }]);
    const noUser = await issuesOf(loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_URL: 'amqps://127.0.0.1:5671/hearth', HEARTH_AMQP_PASSWORD_FILE: good } }));
    expect(noUser[0]?.message).toMatch(/needs the user name in amqp.url/);
    const noUrl = await issuesOf(loadConfig({ env: { HEARTH_AMQP_PASSWORD_FILE: good } }));
    expect(noUrl.map((i) => i.message)).toContain('amqp.passwordFile needs amqp.url');
  });

  it('is checked at load like the etcd one', async () => {
    const issues = await issuesOf(loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_PASSWORD_FILE: join(dir, 'missing') } }));
    expect(issues).toEqual([{ path: 'amqp.passwordFile', env: 'HEARTH_AMQP_PASSWORD_FILE', message: `${join(dir, 'missing')} cannot be read (no such file, ENOENT)` }]);
  });

  it('is what a URL naming a user without a password is missing, unless a client certificate logs in', async () => {
    const issues = await issuesOf(loadConfig({ env: CLUSTER }));
    expect(issues).toEqual([
      {
        path: 'amqp.url',
        env: 'HEARTH_AMQP_URL',
        message: 'names the user hearth but no password: set amqp.passwordFile, or amqp.certFile and amqp.keyFile to log in with the certificate (EXTERNAL)',
      },
    ]);
    const external = await loadConfig({ env: { ...CLUSTER, HEARTH_AMQP_CERT_FILE: good, HEARTH_AMQP_KEY_FILE: good } });
    expect(external.amqp.certFile).toBe(good);
  });
});

describe('redactUrl', () => {
  it('hides a password in a URL but keeps a user without one', () => {
    expect(redactUrl('amqps://hearth:pw@rabbit:5671/v and amqp://:pw2@h/')).toBe('amqps://hearth:[REDACTED]@rabbit:5671/v and amqp://[REDACTED]@h/');
    expect(redactUrl('amqps://hearth@rabbit:5671/v')).toBe('amqps://hearth@rabbit:5671/v');
    expect(redactUrl('amqps://hearth:@rabbit:5671/v')).toBe('amqps://hearth:[REDACTED]@rabbit:5671/v');
  });
});
