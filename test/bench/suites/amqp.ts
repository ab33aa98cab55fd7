// The AMQP job bus against raw amqplib, measured in the same run on the same broker: publish
// with publisher confirms (1 and 32 in flight) and consume-and-ack throughput (prefetch 100,
// a backlog of 4,000 per measured second). Both sides publish persistent, mandatory messages
// to a quorum queue. The bus adds schema validation, JSON, return tracking, bounded waits and,
// on consume, vetting and dispositions; these figures show what that costs.
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
    passwordFile: '',
    prefetch: 100,
    caFile: '',
    certFile: '',
    keyFile: '',
    publishTimeoutMs: 30_000,
    heartbeatSeconds: 30,
    connectTimeoutMs: 10_000,
    reconnectMaxDelayMs: 1_000,
    maxDeliveries: 10,
    quorumInitialGroupSize: 3,
    managementUrl: '',
    managementIntervalMs: 30_000,
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

/** The middle of three. */
function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
}

interface Side {
  publish(): Promise<unknown>;
  /** Fills the queue with `count` jobs, nobody consuming. */
  fill(count: number): Promise<void>;
  /** Consumes and acks until `count` were handled; resolves with msgs/s. */
  drain(count: number): Promise<number>;
  purge(): Promise<void>;
}

async function parallel(count: number, inFlight: number, op: () => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next++ < count) await op();
  }));
}

async function timedDrain(start: (onMessage: () => void) => Promise<() => Promise<void>>, count: number): Promise<number> {
  let handled = 0;
  const started = performance.now();
  const stop = await start(() => void handled++);
  await reach(() => handled, count);
  const rate = count / ((performance.now() - started) / 1_000);
  await stop();
  return rate;
}

/**
 * Raw amqplib and the bus, measured alternately in three rounds (the machine is shared and
 * noisy); each figure is the median of its three rounds.
 */
async function measureBoth(ctx: BenchContext, url: string): Promise<BenchResult[]> {
  const conn = await connect(url);
  const ch = await conn.createConfirmChannel();
  const rawQueue = `raw.${randomUUID().slice(0, 8)}`;
  await ch.assertQueue(rawQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  const body = Buffer.from(JSON.stringify({ ...job(), v: 1, publishedAt: Date.now() }));
  const raw: Side = {
    publish: () => rawPublish(ch, rawQueue, body),
    fill: (count) => parallel(count, 64, () => rawPublish(ch, rawQueue, body)),
    drain: (count) =>
      timedDrain(async (onMessage) => {
        const consumer = await conn.createChannel();
        await consumer.prefetch(100);
        await consumer.consume(rawQueue, (msg) => {
          if (!msg) return;
          JSON.parse(msg.content.toString('utf8'));
          consumer.ack(msg);
          onMessage();
        });
        return () => consumer.close();
      }, count),
    purge: async () => void (await ch.purgeQueue(rawQueue)),
  };
  const prefix = `bench${randomUUID().slice(0, 6)}`;
  const publisher = new AmqpJobBus(settings(url, prefix), { identity: { cluster: CLUSTER, host: 'pub@be' }, logger: silentLogger(), registry: new Registry() });
  const worker = new AmqpJobBus(settings(url, prefix), { identity: { cluster: CLUSTER, host: 'worker@be' }, logger: silentLogger(), registry: new Registry() });
  for (const b of [publisher, worker]) {
    await b.start();
    await b.waitUntilReady({ timeoutMs: 30_000 });
  }
  const bus: Side = {
    publish: () => publisher.publish(job()),
    fill: (count) => parallel(count, 64, () => publisher.publish(job())),
    drain: (count) =>
      timedDrain(async (onMessage) => {
        const sub = await worker.consume(async () => {
          onMessage();
          return dispositions.ack();
        });
        return async () => {
          await sub.cancel();
          await sub.idle();
        };
      }, count),
    purge: async () => void (await ch.purgeQueue(`${prefix}.volume.${CLUSTER}`)),
  };
  const figures = new Map<string, number[]>();
  const record = (name: string, value: number): void => void figures.set(name, [...(figures.get(name) ?? []), value]);
  const backlog = ctx.seconds * 4_000;
  try {
    for (let round = 0; round < 3; round++) {
      for (const [side, s] of [['amqp.raw', raw], ['bus', bus]] as const) {
        const c1 = await measure(ctx.seconds, 1, () => s.publish());
        await s.purge();
        const c32 = await measure(ctx.seconds, 32, () => s.publish());
        await s.purge();
        await s.fill(backlog);
        record(`${side}.c1`, c1.opsPerSecond);
        record(`${side}.p50`, percentile(c1.latenciesMs, 50));
        record(`${side}.c32`, c32.opsPerSecond);
        record(`${side}.consume`, await s.drain(backlog));
      }
      ctx.log(`round ${round + 1}: ${[...figures].map(([k, v]) => `${k} ${(v.at(-1) ?? 0).toFixed(1)}`).join(', ')}`);
    }
  } finally {
    await Promise.all([publisher.close(), worker.close()]);
    await ch.deleteQueue(rawQueue).catch(() => undefined);
    await conn.close();
  }
  const m = (name: string): number => median(figures.get(name) ?? []);
  const rawC1 = standalone('amqp.raw_confirmed_publish_ops_per_s', m('amqp.raw.c1'), 'ops/s');
  const rawP50 = standalone('amqp.raw_confirmed_publish_p50_ms', m('amqp.raw.p50'), 'ms');
  const rawC32 = standalone('amqp.raw_confirmed_publish_c32_ops_per_s', m('amqp.raw.c32'), 'ops/s');
  const rawConsume = standalone('amqp.raw_consume_ack_msgs_per_s', m('amqp.raw.consume'), 'msgs/s');
  return [
    rawC1,
    rawP50,
    rawC32,
    rawConsume,
    against('bus.publish_confirmed_ops_per_s', m('bus.c1'), 'ops/s', rawC1),
    against('bus.publish_confirmed_p50_ms', m('bus.p50'), 'ms', rawP50),
    against('bus.publish_confirmed_c32_ops_per_s', m('bus.c32'), 'ops/s', rawC32),
    against('bus.consume_ack_msgs_per_s', m('bus.consume'), 'msgs/s', rawConsume),
  ];
}

/** Publish-with-confirm and consume throughput of the AMQP bus beside raw amqplib. */
export const suite: BenchSuite = {
  name: 'amqp bus',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const url = await ctx.rabbit.addVhost(`bench-${randomUUID().slice(0, 8)}`);
    return measureBoth(ctx, url);
  },
};
