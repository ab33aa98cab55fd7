// hearth on a three-node RabbitMQ cluster, as configured in production: every node in amqp.url,
// quorum queues with three members, the management API polled for their replicas. Real
// `hearth serve` processes (one API-only, two workers with the fake driver and a shared
// journal) on one etcd, while nodes are killed, partitioned, frozen and the majority lost.
//
// One cluster for the whole file (its start is the slow part); the tests run in order and each
// leaves all three nodes running. Stall and reconnect times are printed, never asserted.
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JournalCall } from '../../../src/drivers/fake-journal.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { clusterQueueName } from '../../../src/routing/topology.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { OpStream } from '../../support/op-stream.js';
import { ClusterClient, readJournal } from '../../support/orphans-cluster.js';
import { freePort } from '../../support/ports.js';
import type { RabbitCluster, RabbitNode } from '../../support/rabbitmq-cluster.js';
import { useRabbitCluster } from '../../support/topology-fixtures.js';
import { waitFor } from '../../support/wait.js';

const VHOST = 'hearth-ha';
const CLUSTER_ID = 'ha@be';
const PASSWORD = `rabbit-pw-${randomBytes(10).toString('hex')}`;
/** A create w1 has started and not ended, if any: the delivery it runs for is not acknowledged yet. */
function openCall({ report }: Awaited<ReturnType<typeof readJournal>>): JournalCall | undefined {
  return report.calls.find((c) => c.call === 'createVolume' && c.member.startsWith('w1') && c.end === undefined);
}

/** Epoch ms of a log line (pino writes ISO times). */
const at = (line: Record<string, unknown>): number => Date.parse(String(line.time));

describe('hearth on a three-node RabbitMQ cluster', () => {
  const topology = useRabbitCluster({ plugins: ['rabbitmq_management'] });
  let rabbit: RabbitCluster;
  let etcd: EtcdTestContext;
  let journal: string;
  let base: Record<string, string>;
  let workerUrls: string;
  let queue: string;
  let api: HearthProcess;
  let w1: HearthProcess;
  let w2: HearthProcess;
  let client: ClusterClient;
  const procs: HearthProcess[] = [];

  const log = (text: string): void => console.log(`[rabbitmq-ha] ${text}`);

  /** The node a process is connected to, from its `hearth_amqp_node_connected{node}`. */
  const connectedNode = async (p: HearthProcess): Promise<RabbitNode | undefined> => {
    const text = await (await fetch(`${p.opsUrl}/metrics`)).text();
    const port = /^hearth_amqp_node_connected\{node="127\.0\.0\.1:(\d+)"\} 1$/m.exec(text)?.[1];
    return port === undefined ? undefined : rabbit.byAmqpPort(Number(port));
  };
  /** Waits until `p` is connected to a node other than `victim`, and returns it. */
  const movedOff = (p: HearthProcess, victim: RabbitNode, timeoutMs = 90_000): Promise<RabbitNode> =>
    waitFor(
      async () => {
        const node = await connectedNode(p);
        return node && node !== victim ? node : undefined;
      },
      { timeoutMs, intervalMs: 100, what: `${p.name} connected to a node other than ${victim.name}` },
    );
  const readyz = async (p: HearthProcess): Promise<number> => (await fetch(`${p.opsUrl}/readyz`)).status;
  const gauge = (p: HearthProcess, name: string, kind = 'cluster'): Promise<number> => new ClusterClient(p).metric(name, { queue_kind: kind });
  /** The `connected to RabbitMQ` lines `p` logged after `since`. */
  const connections = (p: HearthProcess, since: number): Record<string, unknown>[] =>
    p.logs().filter((l) => l.msg === 'connected to RabbitMQ' && at(l) >= since);
  /** Every node runs in one cluster again, and the cluster queue has three members online. */
  const wholeAgain = async (timeoutMs = 120_000): Promise<void> => {
    await rabbit.waitRunning(rabbit.nodes, timeoutMs);
    await expect.poll(async () => (await rabbit.quorumQueue(VHOST, queue)).online.length, { timeout: 60_000, interval: 1_000 }).toBe(3);
  };
  /**
   * Waits up to 30 s for `nodes` to run in one cluster; restarts the application of those that
   * do not (a node frozen past net_ticktime comes back partitioned, and pause_minority does not
   * resolve that). Returns the nodes it restarted.
   */
  const rejoin = async (nodes: readonly RabbitNode[]): Promise<RabbitNode[]> => {
    if (await rabbit.waitRunning(rabbit.nodes, 30_000).then(() => true, () => false)) return [];
    const running = await rabbit.runningNodes(rabbit.nodes.find((n) => !nodes.includes(n)));
    const outside = nodes.filter((n) => !running.includes(n.name));
    for (const n of outside) {
      await n.ctl('stop_app');
      await n.ctl('start_app');
    }
    return outside;
  };
  const startWorker = async (host: string, over: Record<string, string> = {}): Promise<HearthProcess> => {
    const p = await startHearth({ name: `ha-${host}`, env: { ...base, HEARTH_HOST: host, HEARTH_ROLES: 'worker', HEARTH_AMQP_URL: workerUrls, ...over }, startTimeoutMs: 60_000 });
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    rabbit = topology().local();
    await rabbit.addVhost(VHOST);
    // A user of its own, with a password that must never show: the management API needs the
    // monitoring tag for the node count.
    const via = await rabbit.someRunningNode();
    await via.ctl('add_user', 'hearth', PASSWORD);
    await via.ctl('set_user_tags', 'hearth', 'monitoring');
    await via.ctl('set_permissions', '-p', VHOST, 'hearth', '.*', '.*', '.*');
    etcd = useEtcd();
    const dir = await mkdtemp(join(tmpdir(), 'hearth-rabbit-ha-'));
    journal = join(dir, 'journal.jsonl');
    const passwordFile = join(dir, 'amqp-password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const prefix = `ha${randomBytes(3).toString('hex')}`;
    queue = clusterQueueName(prefix, CLUSTER_ID);
    base = {
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_PREFIX: prefix,
      HEARTH_CLUSTER: 'ha',
      HEARTH_BACKEND: 'be',
      HEARTH_LEASE_TTL_MS: '3000',
      HEARTH_LEASE_MARGIN_MS: '1000',
      HEARTH_REPORT_INTERVAL_MS: '1000',
      HEARTH_SWEEP_INTERVAL_MS: '1000',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_DRIVER_FAKE_LATENCY_MS: '300',
      HEARTH_AMQP_HEARTBEAT_SECONDS: '2',
      HEARTH_AMQP_CONNECT_TIMEOUT_MS: '5000',
      HEARTH_AMQP_RECONNECT_MAX_DELAY_MS: '1000',
      HEARTH_AMQP_MANAGEMENT_URL: rabbit.managementUrls.join(','),
      HEARTH_AMQP_MANAGEMENT_INTERVAL_MS: '1000',
      HEARTH_LOG_LEVEL: 'info',
    };
    workerUrls = rabbit.nodes.map((n) => `amqp://hearth:${PASSWORD}@127.0.0.1:${n.amqpPort}/${VHOST}`).join(',');
    // The API process: the user in each URL, the password from the file; its list starts with
    // a URL where nothing listens.
    const apiUrls = [await freePort(), ...rabbit.nodes.map((n) => n.amqpPort)].map((port) => `amqp://hearth@127.0.0.1:${port}/${VHOST}`).join(',');
    api = await startHearth({
      name: 'ha-api',
      env: { ...base, HEARTH_HOST: 'api', HEARTH_ROLES: 'api', HEARTH_AMQP_URL: apiUrls, HEARTH_AMQP_PASSWORD_FILE: passwordFile },
      startTimeoutMs: 60_000,
    });
    procs.push(api);
    client = new ClusterClient(api);
    // w1 runs one operation at a time and holds one more delivery, unacknowledged, for its slot.
    w1 = await startWorker('w1', { HEARTH_AMQP_PREFETCH: '1', HEARTH_LOG_LEVEL: 'debug' });
  }, 180_000);

  // A test that failed half-way must not leave the next one a broken cluster: every node
  // running (restarted, resumed, healed) and the cluster queue whole again.
  afterEach(async () => {
    const broken = rabbit.nodes.filter((n) => !n.alive);
    for (const n of rabbit.nodes) {
      n.resume();
      rabbit.heal(n.index);
    }
    await Promise.all(broken.map((n) => n.start(180_000)));
    await rejoin(rabbit.nodes);
    await wholeAgain(180_000);
  }, 400_000);

  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await etcd?.close();
  });

  it('connects through its list (an unreachable URL skipped), creates quorum queues of three members, and exports their replicas', async () => {
    expect(await readyz(api)).toBe(200);
    expect(await connectedNode(api)).toBeDefined();
    const id = await client.createVolume();
    await client.waitStatus('volume', id, 'available');

    const info = await rabbit.quorumQueue(VHOST, queue);
    expect(info.members.map((n) => n.index).sort()).toEqual([0, 1, 2]);
    const res = await fetch(`${rabbit.node(0).managementUrl()}/api/queues/${VHOST}/${encodeURIComponent(queue)}`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    });
    expect(((await res.json()) as { arguments: Record<string, unknown> }).arguments).toMatchObject({ 'x-quorum-initial-group-size': 3, 'x-queue-type': 'quorum' });

    for (const kind of ['cluster', 'host', 'dead']) {
      await expect.poll(() => gauge(w1, 'hearth_amqp_queue_members', kind), { timeout: 30_000, interval: 250 }).toBe(3);
      expect(await gauge(w1, 'hearth_amqp_queue_online_members', kind)).toBe(3);
      expect(await gauge(w1, 'hearth_amqp_queue_target_members', kind)).toBe(3);
    }
    expect(await new ClusterClient(w1).metric('hearth_amqp_management_up')).toBe(1);
    // An API-only process has no host queue to watch.
    await expect.poll(() => gauge(api, 'hearth_amqp_queue_members', 'cluster'), { timeout: 30_000, interval: 250 }).toBe(3);
    expect(await new ClusterClient(api).metric('hearth_amqp_queue_members', { queue_kind: 'host' })).toBe(0);

    // The configuration is logged URL by URL, every host readable, no password.
    const starting = w1.logs().find((l) => l.msg === 'starting hearth') as { config: { amqp: { url: string } } };
    expect(starting.config.amqp.url).toBe(rabbit.nodes.map((n) => `amqp://hearth:[REDACTED]@127.0.0.1:${n.amqpPort}/${VHOST}`).join(','));
    expect(connections(w1, 0)[0]).toMatchObject({ node: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as string, url: expect.stringContaining('[REDACTED]') as string });
  });

  it('an under-replicated cluster queue shows in the gauges and the log, and `rabbitmq-queues grow` restores it', async () => {
    const victim = rabbit.node(2);
    const via = rabbit.node(0);
    await via.queues('delete_member', '--vhost', VHOST, queue, victim.name);
    await expect.poll(() => gauge(w1, 'hearth_amqp_queue_members'), { timeout: 30_000, interval: 250 }).toBe(2);
    expect(await gauge(w1, 'hearth_amqp_queue_target_members')).toBe(3);
    const warned = w1.logs().find((l) => l.msg === 'the quorum queue is under-replicated: bring its nodes back, or add a member with `rabbitmq-queues grow <node> all`');
    expect(warned).toMatchObject({ queue, queueKind: 'cluster', target: 3 });

    await rabbit.grow(victim, { vhostPattern: `^${VHOST}$`, queuePattern: `^${queue.replace(/[.@]/g, '\\$&')}$` });
    await expect.poll(() => gauge(w1, 'hearth_amqp_queue_members'), { timeout: 30_000, interval: 250 }).toBe(3);
    await expect.poll(() => w1.logs().some((l) => l.msg === 'the quorum queue has all its members online again' && l.queue === queue), { timeout: 10_000 }).toBe(true);
  });

  it('kill -9 of the node a worker is on, a delivery unacknowledged: the worker moves to another node at once, the delivery comes back and runs once', async () => {
    const victim = (await connectedNode(w1))!;
    const stream = new OpStream(client, 3).start();
    await stream.completedAfter(0, 4);
    // Kill while w1 is inside a driver call: its delivery (prefetch 1) is then unacknowledged,
    // since the ack follows the call's end and the final write.
    const held = await waitFor(async () => openCall(await readJournal(journal)), { timeoutMs: 30_000, intervalMs: 10 });
    const t0 = Date.now();
    await victim.kill();
    const killedAt = Date.now();
    const next = await movedOff(w1, victim);
    await stream.completedAfter(t0, 6);
    await stream.stop();
    const reconnect = connections(w1, t0)[0];
    log(`kill -9 of w1's node ${victim.name}: w1 on ${next.name} after ${String(reconnect?.downMs)} ms; no op completed for ${stream.stallAfter(t0, 6)} ms`);
    expect(stream.refused).toEqual([]);
    // While the node is down, the cluster queue has two of its three members online.
    await expect.poll(() => gauge(w1, 'hearth_amqp_queue_online_members'), { timeout: 30_000, interval: 250 }).toBe(2);

    const restarted = Date.now();
    await victim.start(120_000);
    await wholeAgain();
    log(`  ${victim.name} restarted and all three members online again in ${Date.now() - restarted} ms`);
    await expect.poll(() => gauge(w1, 'hearth_amqp_queue_online_members'), { timeout: 30_000, interval: 250 }).toBe(3);
    const { report } = await readJournal(journal);
    expect(report.duplicates).toEqual([]);
    expect(report.overlaps).toEqual([]);
    // Every create of the stream ran once (the delivery that came back included).
    for (const op of stream.done) expect(report.calls.filter((c) => c.call === 'createVolume' && c.resource === `volume:${op.id}` && c.ok).length).toBe(1);
    // The call w1 was in at the kill: when it ended after the node died, its delivery's ack had
    // nowhere to go, so the broker gave the delivery back; the op still completed, its create ran once.
    const heldCall = report.calls.find((c) => c.seq === held.seq && c.pid === held.pid && c.resource === held.resource);
    if (heldCall?.end !== undefined && heldCall.end > killedAt) log(`  the call in flight at the kill ended ${heldCall.end - killedAt} ms after it`);
    expect(stream.done.map((op) => `volume:${op.id}`)).toContain(held.resource);
    expect(report.calls.filter((c) => c.call === 'createVolume' && c.resource === held.resource && c.ok).length).toBe(1);
  }, 300_000);

  it('kill -9 of the node leading the cluster queue: another leads, work goes on; restarted, the node rejoins', async () => {
    w2 = await startWorker('w2');
    const leader = (await rabbit.queueLeader(VHOST, queue))!;
    const on = { w1: await connectedNode(w1), w2: await connectedNode(w2), api: await connectedNode(api) };
    const stream = new OpStream(client, 4).start();
    await stream.completedAfter(0, 4);
    const t0 = Date.now();
    await leader.kill();
    await stream.completedAfter(t0, 8);
    await stream.stop();
    const newLeader = await waitFor(async () => {
      const l = await rabbit.queueLeader(VHOST, queue);
      return l && l !== leader ? l : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'a new leader of the cluster queue' });
    const movedWorkers = Object.entries(on).filter(([, n]) => n === leader).map(([name]) => name);
    log(`kill -9 of the queue leader ${leader.name} (clients on it: ${movedWorkers.join(', ') || 'none'}): new leader ${newLeader.name}; no op completed for ${stream.stallAfter(t0, 8)} ms`);
    expect(stream.refused).toEqual([]);
    for (const p of [w1, w2, api]) await movedOff(p, leader);

    await leader.start(120_000);
    await wholeAgain();
  }, 300_000);

  it('a node cut off from the other two while clients still reach it: pause_minority stops it, its clients move', async () => {
    const victim = (await connectedNode(w2))!;
    const stream = new OpStream(client, 4).start();
    await stream.completedAfter(0, 4);
    const t0 = Date.now();
    rabbit.partition(victim.index, 'cut');
    try {
      const next = await movedOff(w2, victim);
      await stream.completedAfter(t0, 8);
      await stream.stop();
      log(`partition of w2's node ${victim.name}: w2 on ${next.name} after ${String(connections(w2, t0)[0]?.downMs)} ms; no op completed for ${stream.stallAfter(t0, 8)} ms`);
      expect(stream.refused).toEqual([]);
      // The minority node refuses AMQP while cut off: nobody works through it.
      await expect.poll(() => victim.acceptsAmqp(), { timeout: 30_000, interval: 250 }).toBe(false);
    } finally {
      rabbit.heal(victim.index);
    }
    const healed = Date.now();
    await wholeAgain();
    log(`  healed: ${victim.name} running with all members online after ${Date.now() - healed} ms`);
  }, 300_000);

  it('a frozen node (SIGSTOP): its clients give it up after two missed heartbeats and move; SIGCONT, it runs again (its application restarted if it comes back partitioned)', async () => {
    const victim = (await connectedNode(w1))!;
    const stream = new OpStream(client, 4).start();
    await stream.completedAfter(0, 4);
    const t0 = Date.now();
    victim.pause();
    try {
      const next = await movedOff(w1, victim);
      await stream.completedAfter(t0, 8);
      await stream.stop();
      log(`SIGSTOP of w1's node ${victim.name}: w1 on ${next.name} after ${Date.now() - t0} ms (heartbeat 2 s); no op completed for ${stream.stallAfter(t0, 8)} ms`);
      expect(stream.refused).toEqual([]);
    } finally {
      victim.resume();
    }
    const resumed = Date.now();
    // Frozen past net_ticktime, the node was given up by the other two; it comes back
    // partitioned from them, and pause_minority does not resolve that (it was never in a
    // minority it could see): the operator restarts its application (docs/operations.md).
    const restarted = await rejoin([victim]);
    await wholeAgain(180_000);
    const how = restarted.length > 0 ? 'came back partitioned; after `rabbitmqctl stop_app` / `start_app` on it' : 'rejoined by itself';
    log(`  SIGCONT: ${victim.name} ${how}: running with all members online after ${Date.now() - resumed} ms`);
  }, 400_000);

  it('the majority down: the API still records operations, workers go not ready; back, the sweeper publishes them and they run', async () => {
    const [a, b] = [rabbit.node(0), rabbit.node(1)];
    const t0 = Date.now();
    await Promise.all([a.kill(), b.kill()]);
    await expect.poll(() => readyz(w1), { timeout: 60_000, interval: 200 }).toBe(503);
    await expect.poll(() => readyz(w2), { timeout: 60_000, interval: 200 }).toBe(503);
    log(`majority down: both workers not ready ${Date.now() - t0} ms after the kills`);
    const id = await client.createVolume();
    expect(await client.status('volume', id)).toBe('creating');
    const op = JSON.parse((await etcd.client.get(new KeyLayout(etcd.prefix).op('volume', id)).string())!) as { owner: unknown };
    expect(op.owner).toBeNull();

    const back = Date.now();
    await Promise.all([a.start(180_000), b.start(180_000)]);
    log(`  two nodes restarted in ${Date.now() - back} ms`);
    await client.waitStatus('volume', id, 'available', 120_000);
    log(`  the operation recorded while the majority was down completed ${Date.now() - back} ms after the restart began`);
    for (const p of [w1, w2]) await expect.poll(() => readyz(p), { timeout: 60_000, interval: 200 }).toBe(200);
    await wholeAgain(180_000);
  }, 300_000);

  it('ends clean: every process stops with exit 0, nothing ran twice, and no password was ever written', async () => {
    for (const p of procs) expect(await p.stop(), p.name).toMatchObject({ code: 0 });
    const { report } = await readJournal(journal);
    expect(report.duplicates).toEqual([]);
    expect(report.overlaps).toEqual([]);
    expect(report.unfinished).toEqual([]);
    expect(report.malformed).toBe(0);
    for (const p of procs) expect(p.output().includes(PASSWORD), `${p.name} wrote the password`).toBe(false);
  });
});
