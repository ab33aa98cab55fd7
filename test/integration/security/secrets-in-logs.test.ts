import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHearth } from '../../support/hearth-process.js';
import { freePort } from '../../support/ports.js';
import { runHearthCli } from '../deploy/tools.js';

describe('a run configured with secrets', () => {
  // Distinct, greppable values: none of them may appear in anything hearth writes.
  const etcdPassword = `etcd-pw-${randomBytes(12).toString('hex')}`;
  const amqpPassword = `amqp-pw-${randomBytes(12).toString('hex')}`;
  const apiToken = `api-token-${randomBytes(16).toString('hex')}`;
  const secrets = [etcdPassword, amqpPassword, apiToken];
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-secrets-'));
    const tokenFile = join(dir, 'api-token');
    await writeFile(tokenFile, apiToken, { mode: 0o600 });
    // etcd and RabbitMQ on ports where nothing listens, so that connection errors (which
    // client libraries like to decorate with URLs) get logged too.
    const etcdPort = await freePort();
    const amqpPort = await freePort();
    env = {
      HEARTH_LOG_LEVEL: 'trace',
      HEARTH_ETCD_ENDPOINTS: `http://127.0.0.1:${etcdPort}`,
      HEARTH_ETCD_USERNAME: 'hearth',
      HEARTH_ETCD_PASSWORD: etcdPassword,
      HEARTH_AMQP_URL: `amqp://hearth:${amqpPassword}@127.0.0.1:${amqpPort}/hearth`,
      HEARTH_API_TOKEN_FILE: tokenFile,
      HEARTH_LEASE_TTL_MS: '2000',
      HEARTH_LEASE_MARGIN_MS: '500',
    };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('never writes them to its log, whatever it does with them', async () => {
    const hearth = await startHearth({ name: 'secrets', env, waitFor: 'none' });
    try {
      // Whether it starts, or gives up on the unreachable etcd and RabbitMQ, depends on how
      // far cluster mode is built; either way, everything it logs is checked.
      const deadline = Date.now() + 15_000;
      while (hearth.process.alive && Date.now() < deadline && !hearth.logs().some((l) => l.msg === 'hearth started')) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (hearth.logs().some((l) => l.msg === 'hearth started')) {
        const url = `${hearth.apiUrl}/v3/admin/no-such-resource`;
        expect((await fetch(url, { headers: { 'X-Auth-Token': apiToken } })).status).toBe(404);
        expect((await fetch(url, { headers: { Authorization: `Bearer ${apiToken}x` } })).status).toBe(401);
        expect((await fetch(url, { headers: { 'X-Auth-Token': etcdPassword } })).status).toBe(401);
      }
    } finally {
      await hearth.stop();
    }
    const output = hearth.output();
    // The run did log, and logged its configuration, with the secrets replaced.
    const starting = hearth.logs().find((l) => l.msg === 'starting hearth');
    expect(starting, output).toBeDefined();
    const config = starting!.config as { etcd: { password: string }; amqp: { url: string } };
    expect(config.etcd.password).toBe('[REDACTED]');
    expect(config.amqp.url).toMatch(/^amqp:\/\/hearth:\[REDACTED\]@127\.0\.0\.1:\d+\/hearth$/);
    for (const secret of secrets) expect(output.includes(secret), `${secret.slice(0, 8)}… in the log`).toBe(false);
  });

  it('never prints them from `hearth config check`', async () => {
    for (const format of [[], ['--json']]) {
      const res = await runHearthCli(['config', 'check', ...format], env);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain('[REDACTED]');
      for (const secret of secrets) expect((res.stdout + res.stderr).includes(secret)).toBe(false);
    }
  });
});

describe('a run configured with secrets in files (as Kubernetes mounts Secrets)', () => {
  const etcdPassword = `etcd-file-pw-${randomBytes(12).toString('hex')}`;
  const amqpPassword = `amqp-file-pw-${randomBytes(12).toString('hex')}`;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-secret-files-'));
    await writeFile(join(dir, 'etcd-password'), `${etcdPassword}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'amqp-password'), `${amqpPassword}\n`, { mode: 0o600 });
    env = {
      HEARTH_LOG_LEVEL: 'trace',
      HEARTH_ETCD_ENDPOINTS: `http://127.0.0.1:${await freePort()}`,
      HEARTH_ETCD_USERNAME: 'hearth',
      HEARTH_ETCD_PASSWORD_FILE: join(dir, 'etcd-password'),
      HEARTH_AMQP_URL: `amqp://hearth@127.0.0.1:${await freePort()}/hearth`,
      HEARTH_AMQP_PASSWORD_FILE: join(dir, 'amqp-password'),
      HEARTH_LEASE_TTL_MS: '2000',
      HEARTH_LEASE_MARGIN_MS: '500',
    };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('never writes them to its log, and shows the files, not their contents, in its configuration', async () => {
    const hearth = await startHearth({ name: 'secret-files', env, waitFor: 'none' });
    try {
      // Long enough for several connection attempts to the unreachable etcd and RabbitMQ.
      const deadline = Date.now() + 3_000;
      while (hearth.process.alive && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await hearth.stop();
    }
    const starting = hearth.logs().find((l) => l.msg === 'starting hearth');
    expect(starting, hearth.output()).toBeDefined();
    const config = starting!.config as { etcd: { password: string; passwordFile: string }; amqp: { url: string; passwordFile: string } };
    expect(config.etcd).toMatchObject({ password: '', passwordFile: env.HEARTH_ETCD_PASSWORD_FILE });
    expect(config.amqp).toMatchObject({ url: env.HEARTH_AMQP_URL, passwordFile: env.HEARTH_AMQP_PASSWORD_FILE });
    for (const secret of [etcdPassword, amqpPassword]) expect(hearth.output().includes(secret), `${secret.slice(0, 12)}… in the log`).toBe(false);
  });

  it('exits 2 before connecting anywhere when a secret file is missing (unless told to skip them), or given beside the value', async () => {
    const missing = await runHearthCli(['serve'], { ...env, HEARTH_AMQP_PASSWORD_FILE: join(dir, 'nope') });
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain(`amqp.passwordFile (HEARTH_AMQP_PASSWORD_FILE): ${join(dir, 'nope')} cannot be read (no such file, ENOENT)`);
    const both = await runHearthCli(['config', 'check'], { ...env, HEARTH_ETCD_PASSWORD: etcdPassword });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('etcd.passwordFile (HEARTH_ETCD_PASSWORD_FILE): set etcd.password or etcd.passwordFile, not both');
    for (const res of [missing, both]) for (const secret of [etcdPassword, amqpPassword]) expect(res.stdout + res.stderr).not.toContain(secret);
    // A configuration meant for a pod can be checked where its Secret files do not exist.
    const elsewhere = await runHearthCli(['config', 'check', '--skip-secret-files'], { ...env, HEARTH_AMQP_PASSWORD_FILE: join(dir, 'nope') });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
  });

  it('passes `hearth config check`, which prints the files and never the secrets', async () => {
    const res = await runHearthCli(['config', 'check', '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const printed = JSON.parse(res.stdout) as { etcd: { passwordFile: string }; amqp: { passwordFile: string } };
    expect(printed.etcd.passwordFile).toBe(env.HEARTH_ETCD_PASSWORD_FILE);
    expect(printed.amqp.passwordFile).toBe(env.HEARTH_AMQP_PASSWORD_FILE);
    for (const secret of [etcdPassword, amqpPassword]) expect(res.stdout + res.stderr).not.toContain(secret);
  });
});
