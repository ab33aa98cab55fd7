// Broker faults against a private RabbitMQ this file restarts, kills and partitions: no crash,
// publishes fail clearly or succeed within the bound, consumption resumes, and nothing the
// broker confirmed is lost (counted end to end).
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../../src/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Health } from '../../../src/ops/health.js';
import { AmqpJobBus } from '../../../src/routing/amqp-job-bus.js';
import { jobBusReadiness } from '../../../src/routing/job-bus.js';
import { dispositions, type JobBus, type JobInput } from '../../../src/routing/job-bus.js';
import { correlationIdOf } from '../../../src/routing/job-message.js';
import { amqpSettings } from '../../support/amqp-bus.js';
import { RabbitServer } from '../../support/rabbitmq.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { Config } from '../../../src/config/schema.js';

const CLUSTER = 'faults@be';
let rabbit: RabbitServer;
const buses: JobBus[] = [];

beforeAll(async () => {
  rabbit = await RabbitServer.start();
});
afterAll(async () => {
  await Promise.allSettled(buses.map((b) => b.close()));
  await rabbit.stop();
});

function bus(url: string, prefix: string, host: string, overrides: Partial<Config['amqp']> = {}, registry = new Registry(), logger = silentLogger()): AmqpJobBus {
  const b = new AmqpJobBus(amqpSettings(url, prefix, overrides), { identity: { cluster: CLUSTER, host }, logger, registry });
  buses.push(b);
  return b;
}

let seq = 0;
function job(): JobInput {
  seq++;
  return { type: 'volume', id: `v${seq}`, opId: `op-${seq}-${randomUUID().slice(0, 6)}`, kind: 'delete_volume', cluster: CLUSTER, attempt: 1 };
}

async function counter(registry: Registry, name: string): Promise<number> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
}

interface Stream {
  readonly confirmed: Set<string>;
  readonly consumed: Set<string>;
  deliveries: number;
  attempted: number;
  failed: number;
  readonly unexpected: unknown[];
}

/**
 * Two publishers and two consumers run while `fault` happens once `before` jobs were
 * confirmed; publishing stops once `after` more were confirmed.
 */
async function streamThrough(fault: () => Promise<void>, label: string): Promise<Stream> {
  const prefix = `f${randomUUID().slice(0, 8)}`;
  const settings = { publishTimeoutMs: 4_000, heartbeatSeconds: 2, reconnectMaxDelayMs: 1_000 };
  const consumerRegistry = new Registry();
  const stream: Stream = { confirmed: new Set(), consumed: new Set(), deliveries: 0, attempted: 0, failed: 0, unexpected: [] };
  const diagLines: string[] = [];
  const diag = createLogger({ level: 'debug', destination: { write: (line: string) => void diagLines.push(line) } });
  const consumers = [bus(rabbit.url, prefix, 'c1@be', settings, consumerRegistry, diag.child({ m: 'c1' })), bus(rabbit.url, prefix, 'c2@be', settings, new Registry(), diag.child({ m: 'c2' }))];
  const publisher = bus(rabbit.url, prefix, 'p@be', settings);
  const states: string[] = [];
  publisher.onStateChange((c) => states.push(c.state));
  for (const b of [...consumers, publisher]) {
    await b.start();
    await b.waitUntilReady({ timeoutMs: 15_000 });
  }
  for (const c of consumers) {
    await c.consume(async (d) => {
      stream.deliveries++;
      stream.consumed.add(correlationIdOf(d.job));
      return dispositions.ack();
    });
  }
  const stop = new AbortController();
  const produce = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      const input = job();
      stream.attempted++;
      try {
        await publisher.publish(input);
        stream.confirmed.add(input.opId);
      } catch (err) {
        if (err instanceof BackendUnavailableError) stream.failed++;
        else stream.unexpected.push(err);
      }
    }
  };
  const producers = [produce(), produce()];
  await expect.poll(() => stream.confirmed.size, { timeout: 20_000, interval: 20 }).toBeGreaterThanOrEqual(150);
  await fault();
  const faultDoneAt = Date.now();
  const afterFault = stream.confirmed.size;
  await expect.poll(() => stream.confirmed.size - afterFault, { timeout: 60_000, interval: 50 }).toBeGreaterThanOrEqual(150);
  stop.abort();
  await Promise.all(producers);
  try {
    await expect
      .poll(() => [...stream.confirmed].filter((id) => !stream.consumed.has(id)).length, { timeout: 20_000, interval: 100 })
      .toBe(0);
  } catch (err) {
    console.log(`[${label}] missing`, [...stream.confirmed].filter((id) => !stream.consumed.has(id)));
    console.log(`[${label}] queues`, await rabbit.ctl('list_queues', '-q', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers'));
    console.log(`[${label}] consumer states`, consumers.map((c) => c.state));
    console.log(`[${label}] consumer logs\n${diagLines.join('')}`);
    throw err;
  }
  console.log(
    `[${label}] published ${stream.attempted}, confirmed ${stream.confirmed.size}, failed clearly ${stream.failed}, ` +
      `consumed ${stream.consumed.size} distinct in ${stream.deliveries} deliveries; publisher states ${states.join(' → ')}`,
  );
  try {
    expect(stream.unexpected).toEqual([]);
    expect(states).toContain('down');
    expect(publisher.state).toBe('up');
    // Every consumer is back (the other one may have done all the work meanwhile).
    await expect.poll(() => consumers.map((c) => c.state), { timeout: 30_000, interval: 100 }).toEqual(['up', 'up']);
    console.log(`[${label}] both consumers up again ${Date.now() - faultDoneAt} ms after the broker was back (checked at the end)`);
    expect(await counter(consumerRegistry, 'hearth_amqp_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect(await counter(consumerRegistry, 'hearth_amqp_connection_up')).toBe(1);
  } catch (err) {
    console.log(`[${label}] consumer states`, consumers.map((c) => c.state));
    console.log(`[${label}] consumer logs\n${diagLines.join('')}`);
    throw err;
  }
  await Promise.all([...consumers, publisher].map((b) => b.close()));
  return stream;
}

describe('RabbitMQ faults', () => {
  it('declares the topology of docs/routing.md: quorum queues, dead-letter exchange, fanout', async () => {
    const prefix = `topo${randomUUID().slice(0, 6)}`;
    const b = bus(rabbit.url, prefix, 'h1@be');
    await b.start();
    await b.waitUntilReady({ timeoutMs: 15_000 });
    await b.consume(async () => dispositions.ack());
    const queues = JSON.parse(await rabbit.ctl('list_queues', '-q', 'name', 'type', 'durable', 'exclusive', 'arguments', '--formatter', 'json')) as {
      name: string;
      type: string;
      durable: boolean;
      arguments: [string, string, unknown][];
    }[];
    const byName = new Map(queues.map((q) => [q.name, { ...q, arguments: Object.fromEntries(q.arguments.map(([k, , v]) => [k, v])) }]));
    for (const name of [`${prefix}.volume.${CLUSTER}`, `${prefix}.volume.${CLUSTER}.h1@be`]) {
      expect(byName.get(name)).toMatchObject({ type: 'quorum', durable: true });
      expect(byName.get(name)?.arguments).toMatchObject({ 'x-dead-letter-exchange': `${prefix}.dead`, 'x-dead-letter-strategy': 'at-least-once' });
    }
    expect(byName.get(`${prefix}.dead`)).toMatchObject({ type: 'quorum', durable: true });
    const exchanges = JSON.parse(await rabbit.ctl('list_exchanges', '-q', 'name', 'type', 'durable', '--formatter', 'json')) as { name: string; type: string; durable: boolean }[];
    const ex = new Map(exchanges.map((e) => [e.name, e]));
    expect(ex.get(prefix)).toMatchObject({ type: 'direct', durable: true });
    expect(ex.get(`${prefix}.dead`)).toMatchObject({ type: 'fanout', durable: true });
    expect(ex.get(`${prefix}.notices.${CLUSTER}`)).toMatchObject({ type: 'fanout', durable: true });
    await b.close();
  });

  it('survives a broker restart mid-stream: publishes fail clearly or succeed, nothing confirmed is lost', async () => {
    const stream = await streamThrough(() => rabbit.restart(), 'restart');
    expect(stream.consumed.size).toBeGreaterThanOrEqual(stream.confirmed.size);
  });

  it('survives a broker SIGKILL mid-stream the same way', async () => {
    const stream = await streamThrough(async () => {
      await rabbit.kill();
      await rabbit.restart();
    }, 'kill');
    expect(stream.consumed.size).toBeGreaterThanOrEqual(stream.confirmed.size);
  });

  it('detects a silent partition by heartbeat, is not ready meanwhile, and resumes when it heals', async () => {
    const proxy = await TcpProxy.start({ port: rabbit.amqpPort });
    try {
      const url = `amqp://guest:guest@127.0.0.1:${proxy.port}`;
      const prefix = `p${randomUUID().slice(0, 8)}`;
      const settings = { heartbeatSeconds: 1, connectTimeoutMs: 1_500, publishTimeoutMs: 1_500, reconnectMaxDelayMs: 500 };
      const b = bus(url, prefix, 'h1@be', settings);
      const health = new Health();
      health.addReadiness('amqp', jobBusReadiness(b));
      await b.start();
      await b.waitUntilReady({ timeoutMs: 15_000 });
      const consumed: string[] = [];
      await b.consume(async (d) => {
        consumed.push(correlationIdOf(d.job));
        return dispositions.ack();
      });
      const before = await b.publish(job());
      await expect.poll(() => consumed, { timeout: 5_000 }).toContain(before.opId);
      expect(health.ready().ok).toBe(true);

      proxy.pause();
      const pausedAt = Date.now();
      await expect.poll(() => b.state, { timeout: 10_000, interval: 50 }).toBe('down');
      const detectedMs = Date.now() - pausedAt;
      expect(health.ready().ok).toBe(false);
      expect(health.ready().checks.amqp?.detail).toMatch(/RabbitMQ down/);
      const started = Date.now();
      await expect(b.publish(job())).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(Date.now() - started).toBeLessThan(1_500 + 1_000);

      proxy.heal();
      const healedAt = Date.now();
      await expect.poll(() => b.state, { timeout: 15_000, interval: 50 }).toBe('up');
      console.log(`[partition] detected in ${detectedMs} ms (heartbeat 1 s); reconnected ${Date.now() - healedAt} ms after healing`);
      expect(health.ready().ok).toBe(true);
      const after = await b.publish(job());
      await expect.poll(() => consumed, { timeout: 10_000 }).toContain(after.opId);
      await b.close();
    } finally {
      await proxy.close();
    }
  });

  it('a publish made while the broker is unreachable waits, bounded, and succeeds once it is back', async () => {
    const proxy = await TcpProxy.start({ port: rabbit.amqpPort });
    try {
      const url = `amqp://guest:guest@127.0.0.1:${proxy.port}`;
      const prefix = `o${randomUUID().slice(0, 8)}`;
      const b = bus(url, prefix, 'h1@be', { publishTimeoutMs: 8_000, reconnectMaxDelayMs: 300, connectTimeoutMs: 1_000 });
      await b.start();
      await b.waitUntilReady({ timeoutMs: 15_000 });
      const consumed: string[] = [];
      await b.consume(async (d) => {
        consumed.push(correlationIdOf(d.job));
        return dispositions.ack();
      });
      proxy.cut();
      await expect.poll(() => b.state, { timeout: 5_000 }).toBe('down');
      const pending = b.publish(job());
      await new Promise((r) => setTimeout(r, 1_000));
      proxy.heal();
      const sent = await pending;
      await expect.poll(() => consumed, { timeout: 10_000 }).toContain(sent.opId);

      const short = bus(url, prefix, 'h2@be', { publishTimeoutMs: 1_000, reconnectMaxDelayMs: 300, connectTimeoutMs: 500 });
      await short.start();
      await short.waitUntilReady({ timeoutMs: 15_000 });
      proxy.cut();
      await expect.poll(() => short.state, { timeout: 5_000 }).toBe('down');
      const started = Date.now();
      const failure = await short.publish(job()).catch((err: unknown) => err);
      const tookMs = Date.now() - started;
      expect(failure).toBeInstanceOf(BackendUnavailableError);
      expect((failure as BackendUnavailableError).retryable).toBe(true);
      expect((failure as Error).message).toMatch(/within 1000 ms/);
      expect(tookMs).toBeGreaterThanOrEqual(900);
      expect(tookMs).toBeLessThan(3_000);
      proxy.heal();
      await Promise.all([b.close(), short.close()]);
    } finally {
      await proxy.close();
    }
  });

  it('never logs the password of the AMQP URL, on failure or success', async () => {
    const password = `pw-${randomUUID()}`;
    await rabbit.ctl('add_user', 'hearthtest', password);
    await rabbit.ctl('set_permissions', '-p', '/', 'hearthtest', '.*', '.*', '.*');
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
    const prefix = `s${randomUUID().slice(0, 8)}`;
    const wrong = bus(`amqp://hearthtest:wrong-${password}@127.0.0.1:${rabbit.amqpPort}`, prefix, 'h1@be', { reconnectMaxDelayMs: 200 }, new Registry(), logger);
    await wrong.start();
    await expect.poll(() => lines.some((l) => l.includes('cannot connect to RabbitMQ')), { timeout: 15_000 }).toBe(true);
    expect(wrong.ready).toBe(false);
    expect(jobBusReadiness(wrong)().detail ?? '').not.toContain(password);
    await wrong.close();
    const right = bus(`amqp://hearthtest:${password}@127.0.0.1:${rabbit.amqpPort}`, prefix, 'h2@be', {}, new Registry(), logger);
    await right.start();
    await right.waitUntilReady({ timeoutMs: 15_000 });
    await right.publish(job());
    await right.close();
    const text = lines.join('');
    expect(text).toContain('connected to RabbitMQ');
    expect(text).toContain('hearthtest:[REDACTED]@');
    expect(text).not.toContain(password);
  });
});
