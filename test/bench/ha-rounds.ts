// The fault rounds of the failover-ha benchmark (suites/failover-ha.ts): each one injects a fault
// into the three-member etcd or the three-node RabbitMQ while client loops keep creating volumes
// through the API, undoes it, and measures what the clients and the workers saw. No assertion
// here: a round that cannot measure what its figure says throws; everything else is a number.
import type { HearthProcess } from '../support/hearth-process.js';
import type { EtcdCluster, EtcdMember } from '../support/etcd-cluster.js';
import { OpStream } from '../support/op-stream.js';
import type { ClusterClient } from '../support/orphans-cluster.js';
import type { RabbitCluster, RabbitNode } from '../support/rabbitmq-cluster.js';
import { waitFor } from '../support/wait.js';

/** What every round works on. */
export interface HaSetup {
  readonly etcd: EtcdCluster;
  readonly rabbit: RabbitCluster;
  readonly api: HearthProcess;
  readonly workers: readonly HearthProcess[];
  /** The cluster queue (default vhost), whose leader a RabbitMQ round may kill. */
  readonly queue: string;
  /** End records (`fenced/…`) with `how` self recorded at or after `since` (epoch ms), from etcd. */
  selfFences(since: number): Promise<number>;
  log(message: string): void;
}

/** The log line of a worker whose incarnation ended (src/incarnation/supervisor.ts). */
export const ENDED = 'this incarnation ended; rejoining as a new one';
/** The API's log line for a request it answered with a 5xx (src/api/server.ts). */
const API_FAILED = 'API request failed';

/**
 * Requests the API refused since `since`: its 5xx answers to any request (the clients' reads
 * too), or the creates the client loops saw refused, whichever is more (a create that never got
 * an answer is not in the API's log).
 */
function refusedSince(s: HaSetup, stream: OpStream, since: number, refusedBefore: number): number {
  return Math.max(logged([s.api], API_FAILED, since).length, stream.refused.length - refusedBefore);
}

/** How long after a fault was undone the stall window stays open (steady work must be seen). */
const SETTLE_MS = 2_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Epoch ms of a pino log line (ISO time). */
function at(line: Record<string, unknown>): number {
  return typeof line.time === 'number' ? line.time : Date.parse(String(line.time));
}

/** Log lines `msg` the processes wrote at or after `since`. */
export function logged(procs: readonly HearthProcess[], msg: string, since: number): Record<string, unknown>[] {
  return procs.flatMap((p) => p.logs().filter((l) => l.msg === msg && at(l) >= since));
}

/** The longest time without a completed create in a window, and where it began. */
export interface Stall {
  readonly ms: number;
  /** Its start, in ms after the window's start. */
  readonly startMs: number;
}

/**
 * The longest time without a completed create, from `from` until the first completion at or after
 * `until` (so a stall still going on at `until` counts whole). Waits for that completion.
 */
export async function stallBetween(stream: OpStream, from: number, until: number): Promise<Stall> {
  await stream.completedAfter(until, 1, 120_000);
  const times = stream.done
    .map((o) => o.doneAt)
    .filter((t) => t > from)
    .sort((a, b) => a - b);
  let previous = from;
  let longest: Stall = { ms: 0, startMs: 0 };
  for (const t of times) {
    if (t - previous > longest.ms) longest = { ms: t - previous, startMs: previous - from };
    previous = t;
    if (t >= until) break;
  }
  return longest;
}

const describeStall = (stall: Stall): string => `${(stall.ms / 1_000).toFixed(2)} s at most (from ${(stall.startMs / 1_000).toFixed(2)} s after the kill)`;

/** One etcd leader round. */
export interface LeaderRound {
  readonly stallS: number;
  readonly incarnationsLost: number;
  readonly refused: number;
  readonly electedS: number;
}

/** kill -9 of the etcd leader, restarted `downMs` after the kill. */
export async function leaderRound(s: HaSetup, stream: OpStream, n: number, downMs: number): Promise<LeaderRound> {
  await stream.completedAfter(Date.now(), 3);
  const leader = await s.etcd.waitForLeader({ timeoutMs: 20_000 });
  const refusedBefore = stream.refused.length;
  const t0 = Date.now();
  await leader.kill();
  const next = await s.etcd.waitForLeader({ not: leader, timeoutMs: 20_000 });
  const electedS = (Date.now() - t0) / 1_000;
  await sleep(downMs - (Date.now() - t0));
  await leader.start();
  await waitFor(() => leader.healthy(), { timeoutMs: 30_000, intervalMs: 100, what: `${leader.name} healthy again` });
  const until = Date.now() + SETTLE_MS;
  await sleep(SETTLE_MS);
  const stall = await stallBetween(stream, t0, until);
  const stallS = stall.ms / 1_000;
  const incarnationsLost = logged(s.workers, ENDED, t0).length;
  const refused = refusedSince(s, stream, t0, refusedBefore);
  s.log(
    `etcd round ${n}: kill -9 of the leader ${leader.name}, ${next.name} elected after ${electedS.toFixed(2)} s, restarted after ${(downMs / 1_000).toFixed(0)} s: ` +
      `no create completed for ${describeStall(stall)}; ${incarnationsLost} worker incarnation(s) ended; ${refused} API request(s) refused`,
  );
  return { stallS, incarnationsLost, refused, electedS };
}

/** The RabbitMQ node a process is connected to, from its `hearth_amqp_node_connected{node}`. */
async function connectedNode(rabbit: RabbitCluster, p: HearthProcess): Promise<RabbitNode | undefined> {
  const text = await (await fetch(`${p.opsUrl}/metrics`)).text();
  const port = /^hearth_amqp_node_connected\{node="127\.0\.0\.1:(\d+)"\} 1$/m.exec(text)?.[1];
  return port === undefined ? undefined : rabbit.byAmqpPort(Number(port));
}

/** Every node running in one cluster, the cluster queue with three members online. */
async function rabbitWhole(s: HaSetup): Promise<void> {
  await s.rabbit.waitRunning(s.rabbit.nodes, 120_000);
  await waitFor(async () => (await s.rabbit.quorumQueue('/', s.queue)).online.length === s.rabbit.nodes.length, {
    timeoutMs: 90_000,
    intervalMs: 500,
    what: `every member of ${s.queue} online`,
  });
}

/** One RabbitMQ round. */
export interface NodeRound {
  readonly kind: 'worker-node' | 'queue-leader';
  readonly stallS: number;
  readonly refused: number;
}

/**
 * kill -9 of a RabbitMQ node — the one a worker is connected to, or the cluster queue's leader —
 * restarted `downMs` after the kill; the stall window closes once the cluster is whole again.
 */
export async function nodeRound(s: HaSetup, stream: OpStream, n: number, kind: NodeRound['kind'], downMs: number): Promise<NodeRound> {
  await stream.completedAfter(Date.now(), 3);
  const worker = s.workers[n % s.workers.length] as HearthProcess;
  const victim = kind === 'worker-node' ? await connectedNode(s.rabbit, worker) : await s.rabbit.queueLeader('/', s.queue);
  if (!victim) throw new Error(`RabbitMQ round ${n}: no ${kind === 'worker-node' ? `node for ${worker.name}` : 'leader of the cluster queue'}`);
  const on: string[] = [];
  for (const p of [s.api, ...s.workers]) if ((await connectedNode(s.rabbit, p)) === victim) on.push(p.name);
  const refusedBefore = stream.refused.length;
  const t0 = Date.now();
  await victim.kill();
  await sleep(downMs - (Date.now() - t0));
  await victim.start(120_000);
  await rabbitWhole(s);
  const wholeS = (Date.now() - t0) / 1_000;
  const until = Date.now() + SETTLE_MS;
  await sleep(SETTLE_MS);
  const stall = await stallBetween(stream, t0, until);
  const stallS = stall.ms / 1_000;
  const refused = refusedSince(s, stream, t0, refusedBefore);
  s.log(
    `RabbitMQ round ${n}: kill -9 of ${kind === 'worker-node' ? `${worker.name}'s node` : 'the queue leader'} ${victim.name} (clients on it: ${on.join(', ') || 'none'}), ` +
      `restarted after ${(downMs / 1_000).toFixed(0)} s, whole again ${wholeS.toFixed(1)} s after the kill: no create completed for ${describeStall(stall)}; ${refused} API request(s) refused`,
  );
  return { kind, stallS, refused };
}

/** One quorum-loss round. */
export interface QuorumRound {
  /** From quorum's return (a leader elected) until every worker answers `/readyz` 200. */
  readonly readyS: number;
  /** From quorum's return until the first create completed. */
  readonly firstOpS: number;
}

/** Resolves with the epoch ms at which the probe that first saw a leader was sent. */
async function leaderBack(etcd: EtcdCluster, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const asked = Date.now();
    if (await etcd.leader(300)) return asked;
    if (Date.now() > deadline) throw new Error(`etcd cluster: no leader within ${timeoutMs} ms of the members' restart`);
    await sleep(25);
  }
}

/** Polls `/readyz` every 25 ms; resolves with the epoch ms of the first 200. */
async function readyAt(p: HearthProcess, timeoutMs: number): Promise<number> {
  return waitFor(
    async () => {
      const asked = Date.now();
      const res = await fetch(`${p.opsUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
      return res.status === 200 ? asked : undefined;
    },
    { timeoutMs, intervalMs: 25, what: `${p.name} ready again` },
  );
}

/**
 * Two etcd members of three killed for `lossMs` (longer than the lease TTL, so every worker's
 * session is lost while its process lives), then restarted together. Its own client loops: one
 * before the loss (its creates in flight then may be left to the orphan sweep, so it is let go at
 * the kill) and one started as the members restart, whose first completion is `firstOpS`.
 */
export async function quorumRound(s: HaSetup, client: ClusterClient, lanes: number, n: number, lossMs: number): Promise<QuorumRound> {
  const before = new OpStream(client, lanes, 30_000).start();
  await before.completedAfter(Date.now(), 3);
  const down: EtcdMember[] = [s.etcd.member(n % 3), s.etcd.member((n + 1) % 3)];
  const t0 = Date.now();
  await Promise.all(down.map((m) => m.kill()));
  const letGo = before.stop().then(
    () => 0,
    () => before.failures.length,
  );
  await waitFor(() => s.workers.every((w) => logged([w], ENDED, t0).length > 0), {
    timeoutMs: lossMs,
    intervalMs: 100,
    what: 'every worker to lose its session (else this round does not measure a rejoin)',
  });
  const notReady = (await Promise.all(s.workers.map(async (w) => (await fetch(`${w.opsUrl}/readyz`)).status))).filter((c) => c !== 200).length;
  await sleep(lossMs - (Date.now() - t0));
  const after = new OpStream(client, lanes).start();
  try {
    await Promise.all(down.map((m) => m.start()));
    const quorumAt = await leaderBack(s.etcd, 30_000);
    const ready = await Promise.all(s.workers.map((w) => readyAt(w, 120_000)));
    const readyS = (Math.max(...ready) - quorumAt) / 1_000;
    await after.completedAfter(quorumAt, 1, 120_000);
    const firstOpS = (Math.min(...after.done.map((o) => o.doneAt).filter((t) => t > quorumAt)) - quorumAt) / 1_000;
    const selfFenced = await s.selfFences(t0);
    s.log(
      `quorum round ${n}: ${down.map((m) => m.name).join(' and ')} down ${((quorumAt - t0) / 1_000).toFixed(1)} s (${notReady} of ${s.workers.length} workers not ready during the loss); ` +
        `from the new leader: every worker ready after ${readyS.toFixed(2)} s (${ready.map((r) => ((r - quorumAt) / 1_000).toFixed(2)).join(', ')}), ` +
        `first create completed after ${firstOpS.toFixed(2)} s; ${selfFenced} earlier incarnation(s) fenced by their own process; ` +
        `${await letGo} create(s) in flight at the loss not available within 30 s (left to the orphan sweep)`,
    );
    return { readyS, firstOpS };
  } finally {
    await after.stop().catch((err: unknown) => s.log(`quorum round ${n}: ${(err as Error).message}`));
  }
}
