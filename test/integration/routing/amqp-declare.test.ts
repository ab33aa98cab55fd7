// Upgrading a running system: queues an earlier hearth declared (without an initial group size,
// or with another one) keep their declaration, and the bus still declares, consumes and
// publishes on them; a new queue gets the group size (one member on a single node). On the
// shared single RabbitMQ, in a vhost of its own.
import { randomUUID } from 'node:crypto';
import { type ChannelModel, connect } from 'amqplib';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { declareQuorumQueue } from '../../../src/routing/amqp-declare.js';
import { AmqpJobBus } from '../../../src/routing/amqp-job-bus.js';
import { dispositions, type JobInput } from '../../../src/routing/job-bus.js';
import { clusterQueueName, hostQueueName, workQueueArguments } from '../../../src/routing/topology.js';
import { amqpSettings } from '../../support/amqp-bus.js';
import { type AmqpTestContext, useAmqp } from '../../support/context.js';
import { RabbitServer } from '../../support/rabbitmq.js';

const CLUSTER = 'up@be';
const OTHER = 'other@be';

interface QueueRow {
  name: string;
  arguments: Record<string, unknown>;
  members?: string[];
}

describe('declaring quorum queues across an upgrade', () => {
  let amqp: AmqpTestContext;
  let conn: ChannelModel;
  let bus: AmqpJobBus | undefined;

  const queues = async (): Promise<Map<string, QueueRow>> => {
    const node = inject('rabbitNode');
    if (!node) throw new Error('this test reads queue arguments with rabbitmqctl: it needs the RabbitMQ the harness started');
    const out = await RabbitServer.attach(node).ctl('list_queues', '-p', amqp.vhost ?? '/', 'name', 'arguments', 'members', '--formatter', 'json');
    // rabbitmqctl lists arguments as [name, type, value] triples.
    const rows = JSON.parse(out) as (Omit<QueueRow, 'arguments'> & { arguments: [string, string, unknown][] })[];
    return new Map(rows.map((r) => [r.name, { ...r, arguments: Object.fromEntries(r.arguments.map(([k, , v]) => [k, v])) }]));
  };

  /** Declares a queue as an earlier hearth did, on a channel of its own. */
  const declareOld = async (name: string, args: Record<string, unknown>): Promise<void> => {
    const ch = await conn.createChannel();
    await ch.assertQueue(name, { durable: true, arguments: args });
    await ch.close();
  };

  beforeAll(async () => {
    amqp = await useAmqp();
    conn = await connect(amqp.url);
    conn.on('error', () => undefined);
  });
  afterAll(async () => {
    await bus?.close();
    await conn.close().catch(() => undefined);
    await amqp.close();
  });

  it('keeps the declaration of existing queues, gives new ones the group size, and the bus works on both', async () => {
    const dead = `${amqp.prefix}.dead`;
    const cluster = clusterQueueName(amqp.prefix, CLUSTER);
    const other = clusterQueueName(amqp.prefix, OTHER);
    // As an earlier hearth left them: no x-quorum-initial-group-size; another cluster's with 2.
    await declareOld(dead, { 'x-queue-type': 'quorum' });
    await declareOld(cluster, workQueueArguments(dead));
    await declareOld(other, { ...workQueueArguments(dead), 'x-quorum-initial-group-size': 2 });

    bus = new AmqpJobBus(amqpSettings(amqp.url, amqp.prefix, { quorumInitialGroupSize: 3 }), { identity: { cluster: CLUSTER, host: 'w1@be' }, logger: silentLogger(), registry: new Registry() });
    await bus.start();
    await bus.waitUntilReady({ timeoutMs: 15_000 });
    const seen: string[] = [];
    await bus.consume(async (d) => {
      if ('opId' in d.job) seen.push(d.job.opId);
      return dispositions.ack();
    });
    const job = (cluster: string): JobInput => ({ type: 'volume', id: randomUUID(), opId: randomUUID(), kind: 'delete_volume', cluster, attempt: 1 });
    const mine = await bus.publish(job(CLUSTER));
    await expect.poll(() => seen.includes(mine.opId), { timeout: 15_000 }).toBe(true);
    // Publishing to another cluster declares its queue first: the one with size 2 stays.
    await bus.publish(job(OTHER));

    const rows = await queues();
    expect(rows.get(dead)?.arguments).not.toHaveProperty('x-quorum-initial-group-size');
    expect(rows.get(cluster)?.arguments).not.toHaveProperty('x-quorum-initial-group-size');
    expect(rows.get(other)?.arguments).toMatchObject({ 'x-quorum-initial-group-size': 2 });
    // The host queue is new: created with the group size; a single node makes one member.
    const host = rows.get(hostQueueName(amqp.prefix, CLUSTER, 'w1@be'));
    expect(host?.arguments).toMatchObject({ 'x-quorum-initial-group-size': 3, 'x-queue-type': 'quorum' });
    expect(host?.members).toHaveLength(1);
  });

  it('still refuses a queue that is declared otherwise in any other way', async () => {
    const name = `${amqp.prefix}.classic`;
    await declareOld(name, {});
    const err = await declareQuorumQueue(conn, name, { 'x-queue-type': 'quorum' }, 3).catch((e: unknown) => e);
    expect(String(err)).toMatch(/PRECONDITION_FAILED - inequivalent arg 'x-queue-type'/);
  });
});
