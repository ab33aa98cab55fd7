import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { EtcdServer } from '../../support/etcd.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { loadConfig } from '../../../src/config/load.js';
import { createEtcdClient } from '../../../src/etcd/client.js';

const run = promisify(execFile);

describe('the shared etcd', () => {
  let etcd: EtcdTestContext;
  beforeAll(() => {
    etcd = useEtcd();
  });
  afterAll(() => etcd.close());

  it('is a real etcd: etcd3 and etcdctl see the same keys under the test prefix', async () => {
    await etcd.client.put(`${etcd.prefix}/a`).value('1');
    const { stdout } = await run('etcdctl', ['--endpoints', etcd.endpoints.join(','), 'get', `${etcd.prefix}/a`, '--print-value-only'], {
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    expect(stdout.trim()).toBe('1');
  });

  it('gives each context its own prefix, deleted on close', async () => {
    const other = useEtcd();
    expect(other.prefix).not.toBe(etcd.prefix);
    await other.client.put(`${other.prefix}/x`).value('y');
    await other.close();
    expect(await etcd.client.get(`${other.prefix}/x`).string()).toBeNull();
  });
});

describe('the shared RabbitMQ', () => {
  let amqp: AmqpTestContext;
  beforeAll(async () => {
    amqp = await useAmqp();
  });
  afterAll(() => amqp.close());

  it('carries a confirmed message through a quorum queue in the test vhost', async () => {
    const conn = await connect(amqp.url);
    try {
      const ch = await conn.createConfirmChannel();
      const queue = `${amqp.prefix}.q`;
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await new Promise<void>((resolve, reject) =>
        ch.sendToQueue(queue, Buffer.from('hello'), { persistent: true }, (err) => (err ? reject(err as Error) : resolve())),
      );
      const msg = await ch.get(queue, { noAck: false });
      expect(msg && msg.content.toString()).toBe('hello');
      if (msg) ch.ack(msg);
      await ch.close();
    } finally {
      await conn.close();
    }
  });
});

describe('a private etcd behind a TCP proxy', () => {
  let server: EtcdServer;
  let proxy: TcpProxy;
  let client: Etcd3;
  beforeAll(async () => {
    server = await EtcdServer.start();
    proxy = await TcpProxy.start({ port: server.clientPort });
    // hearth's own client settings: a deadline per call, no retries, no circuit breaker.
    const config = await loadConfig({ env: { HEARTH_ETCD_ENDPOINTS: proxy.url, HEARTH_AMQP_URL: 'amqp://x', HEARTH_ETCD_CALL_TIMEOUT_MS: '1000' } });
    client = createEtcdClient(config.etcd);
  });
  afterAll(async () => {
    client.close();
    await proxy.close();
    await server.stop();
  });

  it('forwards, partitions (silence), heals, cuts (reset) and survives a restart', async () => {
    await client.put('k').value('v1');
    expect(await client.get('k').string()).toBe('v1');

    proxy.pause();
    const started = Date.now();
    await expect(client.get('k').string()).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // silence: only the deadline ends it
    proxy.resume();
    expect(await client.get('k').string()).toBe('v1');

    proxy.cut();
    await expect(client.get('k').string()).rejects.toThrow();
    proxy.heal();
    await expect.poll(() => client.get('k').string().catch(() => 'error'), { timeout: 10_000 }).toBe('v1');

    await server.restart();
    await expect.poll(() => client.get('k').string().catch(() => 'error'), { timeout: 10_000 }).toBe('v1');
  });
});
