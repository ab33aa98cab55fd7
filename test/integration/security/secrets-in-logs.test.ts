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
