// A worker whose RabbitMQ restarts under it (a private broker): while the broker is away the
// worker is not ready and takes no work, but stays a member (same incarnation); the API still
// records operations (its publish wait is bounded), and once the broker is back the sweeper
// publishes them and the worker runs them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { RabbitServer } from '../../support/rabbitmq.js';
import { VolumeClient } from '../../support/volume-client.js';

describe('a broker restart while a worker runs', () => {
  let etcd: EtcdTestContext;
  let rabbit: RabbitServer;
  let hearth: HearthProcess;
  let client: VolumeClient;

  beforeAll(async () => {
    etcd = useEtcd();
    rabbit = await RabbitServer.start();
    hearth = await startHearth({
      name: 'broker-restart',
      env: {
        HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
        HEARTH_ETCD_PREFIX: etcd.prefix,
        HEARTH_AMQP_URL: rabbit.url,
        HEARTH_AMQP_HEARTBEAT_SECONDS: '2',
        HEARTH_AMQP_RECONNECT_MAX_DELAY_MS: '1000',
        HEARTH_CLUSTER: 'restart',
        HEARTH_BACKEND: 'fake',
        HEARTH_HOST: 'w1',
        HEARTH_DRIVER_NAME: 'fake',
        HEARTH_SWEEP_INTERVAL_MS: '1000',
      },
    });
    client = new VolumeClient(hearth.apiUrl);
  });
  afterAll(async () => {
    await hearth?.stop();
    await rabbit?.stop();
    await etcd?.close();
  });

  it('not ready and no work while the broker is away, membership kept; queued work runs once it is back', async () => {
    const before = await client.createVolume(1);
    await client.until('volume', before, (v) => v?.status === 'available', { timeoutMs: 30_000 });
    const aliveKey = new KeyLayout(etcd.prefix).alive('w1@fake');
    const alive = await etcd.client.get(aliveKey).exec();
    const aliveRevision = alive.kvs[0]?.create_revision;
    expect(aliveRevision).toBeDefined();

    const restarted = rabbit.restart(6_000);
    try {
      await expect.poll(async () => (await fetch(`${hearth.opsUrl}/readyz`)).status, { timeout: 30_000, interval: 100 }).toBe(503);
      const verbose = await (await fetch(`${hearth.opsUrl}/readyz?verbose`)).text();
      expect(verbose).toMatch(/\[-\]job-bus failed/);
      expect(verbose).toContain('[+]membership ok');
      expect((await etcd.client.get(aliveKey).exec()).kvs[0]?.create_revision).toBe(aliveRevision);

      // The API still answers within its bounded publish wait; the op stays recorded, unpublished.
      const asked = Date.now();
      const during = await client.createVolume(1);
      expect(Date.now() - asked).toBeLessThan(3_000);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await client.show('volume', during)).toMatchObject({ status: 'creating' });
      const op = JSON.parse((await etcd.client.get(new KeyLayout(etcd.prefix).op('volume', during)).string())!) as { owner: unknown; publishedAt: unknown };
      expect(op).toMatchObject({ owner: null, publishedAt: null });

      await restarted;
      await expect.poll(async () => (await fetch(`${hearth.opsUrl}/readyz`)).status, { timeout: 60_000, interval: 200 }).toBe(200);
      await client.until('volume', during, (v) => v?.status === 'available', { timeoutMs: 30_000 });
    } finally {
      await restarted.catch(() => undefined);
    }
    // The same incarnation throughout: the broker never touched the membership.
    expect((await etcd.client.get(aliveKey).exec()).kvs[0]?.create_revision).toBe(aliveRevision);
    expect(hearth.logs().some((l) => l.msg === 'republished queued ops')).toBe(true);
    const after = await client.createVolume(1);
    await client.until('volume', after, (v) => v?.status === 'available', { timeoutMs: 30_000 });
  });
});
