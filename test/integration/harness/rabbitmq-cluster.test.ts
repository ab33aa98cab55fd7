import { type ConfirmChannel, connect } from 'amqplib';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RabbitCluster, RabbitNode } from '../../support/rabbitmq-cluster.js';
import { useRabbitCluster } from '../../support/topology-fixtures.js';

// The fault primitives of the three-node RabbitMQ cluster, each shown to do what later suites
// rely on. The cluster is shared by the tests in order; each test leaves all three nodes running.

const VHOST = 'harness';

/** `promise`, or a rejection after `ms`: a broker that goes away must not hang a test. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a confirm channel on `node`, runs `fn` (bounded), and closes the connection. */
async function withChannel<T>(node: RabbitNode, fn: (ch: ConfirmChannel) => Promise<T>): Promise<T> {
  const conn = await within(5_000, connect(node.url(VHOST), { timeout: 5_000 }));
  conn.on('error', () => undefined); // a node going away mid-test must not crash the run
  try {
    return await within(10_000, conn.createConfirmChannel().then(fn));
  } finally {
    await within(2_000, conn.close()).catch(() => undefined);
  }
}

async function declareQuorumQueue(node: RabbitNode, queue: string, groupSize: number): Promise<void> {
  await withChannel(node, async (ch) => {
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': groupSize } });
  });
}

async function publish(node: RabbitNode, queue: string, body: string): Promise<void> {
  await withChannel(node, async (ch) => {
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true });
    await ch.waitForConfirms();
  });
}

/** One message from `queue` through `node`, acked; undefined when the queue is empty or unavailable. */
async function getOne(node: RabbitNode, queue: string): Promise<string | undefined> {
  try {
    return await withChannel(node, async (ch) => {
      const msg = await ch.get(queue, { noAck: false });
      if (!msg) return undefined;
      ch.ack(msg);
      return msg.content.toString();
    });
  } catch {
    return undefined;
  }
}

describe('a three-node RabbitMQ cluster', () => {
  const topology = useRabbitCluster({ nodes: 3 });
  let rabbit: RabbitCluster;
  beforeAll(async () => {
    rabbit = topology().local();
    await rabbit.addVhost(VHOST);
  });

  it('forms: three running nodes; a quorum queue gets a replica per node, or one more after `grow`', async () => {
    expect(rabbit.urls).toHaveLength(3);
    expect((await rabbit.runningNodes()).sort()).toEqual(rabbit.nodes.map((n) => n.name).sort());
    await declareQuorumQueue(rabbit.node(0), 'q.three', 3);
    const info = await rabbit.quorumQueue(VHOST, 'q.three');
    expect(info.members.map((n) => n.index).sort()).toEqual([0, 1, 2]);
    expect(info.leader).toBeDefined();

    await declareQuorumQueue(rabbit.node(1), 'q.grown', 2);
    const before = await rabbit.queueMembers(VHOST, 'q.grown');
    expect(before).toHaveLength(2);
    const missing = rabbit.nodes.find((n) => !before.includes(n))!;
    await rabbit.grow(missing, { vhostPattern: `^${VHOST}$`, queuePattern: '^q\\.grown$' });
    expect((await rabbit.queueMembers(VHOST, 'q.grown')).map((n) => n.index).sort()).toEqual([0, 1, 2]);
    // Every pair of nodes is linked through a proxy that knows which node opened the link (the
    // CLI's connections show as '?').
    const sources = rabbit.peerLinks.sources();
    for (const [a, b] of [[0, 1], [0, 2], [1, 2]] as const) {
      expect(sources[a]!.includes(String(b)) || sources[b]!.includes(String(a))).toBe(true);
    }
  });

  it('kill -9 of the queue leader: a message published before is consumed through another node; restarted, the node rejoins', async () => {
    const queue = 'q.kill';
    await declareQuorumQueue(rabbit.node(0), queue, 3);
    const leader = (await rabbit.queueLeader(VHOST, queue))!;
    const other = rabbit.nodes.find((n) => n !== leader)!;
    await publish(other, queue, 'survives');
    await leader.kill();
    expect(leader.alive).toBe(false);
    await expect.poll(() => getOne(other, queue), { timeout: 30_000, interval: 500 }).toBe('survives');
    const next = await rabbit.queueLeader(VHOST, queue);
    expect(next && next !== leader).toBe(true);

    await leader.start(); // same data dir, ports and node name
    await expect.poll(async () => (await rabbit.quorumQueue(VHOST, queue)).online.length, { timeout: 30_000, interval: 500 }).toBe(3);
  });

  it('partition (silent, as dropped packets): pause_minority pauses the cut node while the majority serves; healed, it runs again', async () => {
    const queue = 'q.partition';
    await declareQuorumQueue(rabbit.node(0), queue, 3);
    const cut = rabbit.node(2);
    const [a, b] = [rabbit.node(0), rabbit.node(1)];
    rabbit.partition(cut.index, 'silence');
    try {
      // After net_ticktime the node sees itself in a minority and pause_minority stops its broker:
      // its AMQP port is still open, but AMQP is refused.
      await expect.poll(() => cut.acceptsAmqp(), { timeout: 60_000, interval: 250 }).toBe(false);
      expect(await cut.ctl('eval', 'rabbit:is_running().')).toContain('false');
      await expect.poll(async () => (await rabbit.runningNodes(a)).sort(), { timeout: 30_000, interval: 500 }).toEqual([a.name, b.name].sort());
      await publish(a, queue, 'majority');
      expect(await getOne(b, queue)).toBe('majority');
    } finally {
      rabbit.heal(cut.index);
    }
    await rabbit.waitRunning(); // listed running by the others, and accepting AMQP again
    expect(await cut.acceptsAmqp()).toBe(true);
  });

  it('SIGSTOP / SIGCONT of a node: silent while stopped, running again after', async () => {
    const node = rabbit.node(1);
    node.pause();
    try {
      expect(await node.acceptsAmqp()).toBe(false);
    } finally {
      node.resume();
    }
    await expect.poll(() => node.acceptsAmqp(), { timeout: 30_000, interval: 250 }).toBe(true);
  });
});
