import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHearth, spawnHearth, waitForLine } from '../deploy/hearth-process.js';

/** A loopback port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

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
    const etcdPort = await closedPort();
    const amqpPort = await closedPort();
    env = {
      HEARTH_DATA_DIR: join(dir, 'data'),
      HEARTH_LOG_LEVEL: 'trace',
      HEARTH_ETCD_ENDPOINTS: `http://127.0.0.1:${etcdPort}`,
      HEARTH_ETCD_USERNAME: 'hearth',
      HEARTH_ETCD_PASSWORD: etcdPassword,
      HEARTH_AMQP_URL: `amqp://hearth:${amqpPassword}@127.0.0.1:${amqpPort}/hearth`,
      HEARTH_API_TOKEN_FILE: tokenFile,
      HEARTH_API_LISTEN: '127.0.0.1:0',
      HEARTH_OPS_LISTEN: '127.0.0.1:0',
      HEARTH_LEASE_TTL_MS: '2000',
      HEARTH_LEASE_MARGIN_MS: '500',
    };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('never writes them to its log, whatever it does with them', async () => {
    const hearth = spawnHearth(['serve'], env);
    try {
      // Whether it starts, or gives up on the unreachable etcd and RabbitMQ, depends on how
      // far cluster mode is built; either way, everything it logs is checked.
      const started = await waitForLine(hearth, (l) => l.msg === 'hearth started', 15_000);
      if (started?.api) {
        const url = `http://127.0.0.1:${started.api.port}/v3/admin/no-such-resource`;
        expect((await fetch(url, { headers: { 'X-Auth-Token': apiToken } })).status).toBe(404);
        expect((await fetch(url, { headers: { Authorization: `Bearer ${apiToken}x` } })).status).toBe(401);
        expect((await fetch(url, { headers: { 'X-Auth-Token': etcdPassword } })).status).toBe(401);
      }
    } finally {
      await hearth.stop();
    }
    const output = hearth.output();
    // The run did log, and logged its configuration, with the secrets replaced.
    const starting = hearth.lines().find((l) => l.msg === 'starting hearth');
    expect(starting, output).toBeDefined();
    const config = starting!.config as { etcd: { password: string }; amqp: { url: string } };
    expect(config.etcd.password).toBe('[REDACTED]');
    expect(config.amqp.url).toMatch(/^amqp:\/\/hearth:\[REDACTED\]@127\.0\.0\.1:\d+\/hearth$/);
    for (const secret of secrets) expect(output.includes(secret), `${secret.slice(0, 8)}… in the log`).toBe(false);
  });

  it('never prints them from `hearth config check`', async () => {
    for (const format of [[], ['--json']]) {
      const res = await runHearth(['config', 'check', ...format], env);
      expect(res.code, res.output).toBe(0);
      expect(res.output).toContain('[REDACTED]');
      for (const secret of secrets) expect(res.output.includes(secret)).toBe(false);
    }
  });
});
