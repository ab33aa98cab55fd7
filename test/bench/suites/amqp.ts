// The AMQP job bus against raw amqplib, measured in the same run on the same broker: publish
// with publisher confirms (1 and 32 in flight) and consume-and-ack throughput. The bus adds
// validation, JSON, a mandatory flag with return tracking and its own bookkeeping; these
// figures show what that costs.
import { randomUUID } from 'node:crypto';
import { type ConfirmChannel, connect } from 'amqplib';
import { Registry } from 'prom-client';
import type { Config } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { AmqpJobBus } from '../../../src/routing/amqp-job-bus.js';
import { dispositions, type JobInput } from '../../../src/routing/job-bus.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, standalone } from '../types.js';
import { measure } from './etcd-baseline.js';

const CLUSTER = 'bench@be';

function settings(url: string, prefix: string): Config['amqp'] {
  return {
    url,
    prefix,
    prefetch: 100,
    caFile: '',
    certFile: '',
    keyFile: '',
    publishTimeoutMs: 30_000,
    heartbeatSeconds: 30,
    connectTimeoutMs: 10_000,
    reconnectMaxDelayMs: 1_000,
    maxDeliveries: 10,
  };
}

let seq = 0;
function job(): JobInput {
  seq++;
  return { type: 'volume', id: `vol-${seq}`, opId: `op-${seq}`, kind: 'create_volume', cluster: CLUSTER, attempt: 1 };
}

/** A figure compared with a baseline measured in this suite. */
function against(name: string, value: number, unit: string, baseline: BenchResult): BenchResult {
  return { name, value, unit, baseline: baseline.name, baseline_value: baseline.value, ratio: baseline.value === 0 ? null : value / baseline.value };
}

function rawPublish(ch: ConfirmChannel, queue: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    ch.publish('', queue, body, { persistent: true, mandatory: true, messageId: randomUUID() }, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('nacked')) : resolve())),
  );
}

/** Resolves when `count()` reaches `target`; polls briefly. */
async function reach(count: () => number, target: number): Promise<void> {
  while (count() < target) await new Promise((r) => setTimeout(r, 2));
}

async function rawFigures(ctx: BenchContext, url: string): Promise<BenchResult[]> {
  const conn = await connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    const queue = `raw.${randomUUID().slice(0, 8)}`;
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const body = Buffer.from(JSON.stringify({ ...job(), v: 1, publishedAt: Date.now() }));
    const c1 = await measure(ctx.seconds, 1, () => rawPublish(ch, queue, body));
    const c32 = await measure(ctx.seconds, 32, () => rawPublish(ch, queue, body));
    await ch.purgeQueue(queue);
    const total = ctx.seconds * 4_000;
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      for (let i = w; i < total; i += 64) await rawPublish(ch, queue, body);
    }));
    const consumer = await conn.createChannel();
    await consumer.prefetch(100);
    let acked = 0;
    const started = performance.now();
    await consumer.consume(queue, (msg) => {
      if (!msg) return;
      JSON.parse(msg.content.toString('utf8'));
      consumer.ack(msg);
      acked++;
    });
    await reach(() => acked, total);
    const consumeRate = total / ((performance.now() - started) / 1_000);
    await ch.deleteQueue(queue);
    return [
      standalone('amqp.raw_confirmed_publish_ops_per_s', c1.opsPerSecond, 'ops/s'),
      standalone('amqp.raw_confirmed_publish_p50_ms', percentile(c1.latenciesMs, 50), 'ms'),
      standalone('amqp.raw_confirmed_publish_c32_ops_per_s', c32.opsPerSecond, 'ops/s'),
      standalone('amqp.raw_consume_ack_msgs_per_s', consumeRate, 'msgs/s'),
    ];
  } finally {
    await conn.close();
  }
}

async function busFigures(ctx: BenchContext, url: string, raw: Map<string, BenchResult>): Promise<BenchResult[]> {
  const prefix = `bench${randomUUID().slice(0, 6)}`;
  const publisher = new AmqpJobBus(settings(url, prefix), { identity: { cluster: CLUSTER, host: 'pub@be' }, logger: silentLogger(), registry: new Registry() });
  const worker = new AmqpJobBus(settings(url, prefix), { identity: { cluster: CLUSTER, host: 'worker@be' }, logger: silentLogger(), registry: new Registry() });
  try {
    for (const bus of [publisher, worker]) {
      await bus.start();
      await bus.waitUntilReady({ timeoutMs: 30_000 });
    }
    const c1 = await measure(ctx.seconds, 1, () => publisher.publish(job()));
    const c32 = await measure(ctx.seconds, 32, () => publisher.publish(job()));
    // Consume what was published so far, then a fresh backlog of the same size as the raw one.
    let handled = 0;
    const backlog = c1.latenciesMs.length + c32.latenciesMs.length;
    const drain = await worker.consume(async () => {
      handled++;
      return dispositions.ack();
    });
    await reach(() => handled, backlog);
    const total = ctx.seconds * 4_000;
    await drain.cancel();
    await drain.idle();
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      for (let i = w; i < total; i += 64) await publisher.publish(job());
    }));
    handled = 0;
    const started = performance.now();
    await worker.consume(async () => {
      handled++;
      return dispositions.ack();
    });
    await reach(() => handled, total);
    const consumeRate = total / ((performance.now() - started) / 1_000);
    const base = (name: string): BenchResult => raw.get(name) as BenchResult;
    return [
      against('bus.publish_confirmed_ops_per_s', c1.opsPerSecond, 'ops/s', base('amqp.raw_confirmed_publish_ops_per_s')),
      against('bus.publish_confirmed_p50_ms', percentile(c1.latenciesMs, 50), 'ms', base('amqp.raw_confirmed_publish_p50_ms')),
      against('bus.publish_confirmed_c32_ops_per_s', c32.opsPerSecond, 'ops/s', base('amqp.raw_confirmed_publish_c32_ops_per_s')),
      against('bus.consume_ack_msgs_per_s', consumeRate, 'msgs/s', base('amqp.raw_consume_ack_msgs_per_s')),
    ];
  } finally {
    await Promise.all([publisher.close(), worker.close()]);
  }
}

/** Publish-with-confirm and consume throughput of the AMQP bus beside raw amqplib. */
export const suite: BenchSuite = {
  name: 'amqp bus',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const url = await ctx.rabbit.addVhost(`bench-${randomUUID().slice(0, 8)}`);
    const raw = await rawFigures(ctx, url);
    ctx.log(raw.map((r) => `${r.name} ${r.value.toFixed(1)} ${r.unit}`).join('; '));
    const bus = await busFigures(ctx, url, new Map(raw.map((r) => [r.name, r])));
    return [...raw, ...bus];
  },
};
