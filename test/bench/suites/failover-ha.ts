// Failover on the production topology (issue 12): the only suite on a three-member etcd and a
// three-node RabbitMQ cluster, which it starts itself (test/support/topology.ts); every other
// suite keeps the run's single etcd member and RabbitMQ node, so their ratios stay comparable.
// Real `hearth serve` processes as a deployment runs them — every etcd member in
// etcd.endpoints, every RabbitMQ node in amqp.url, the default lease TTL and everything else at
// its default (the log level too) — an API-only process and three workers with the instant fake
// driver, while client loops (test/support/op-stream.ts) keep creating volumes through the API
// and wait for each to be `available`. The stall is the longest time in which no create completed, from the fault until
// the first completion at least 2 s after it was undone. Three kinds of round (ha-rounds.ts):
// - etcd leader (`failover.etcd_leader_*`): kill -9 of the etcd leader, restarted 6 s after the
//   kill. Also counted: worker incarnations that ended (`this incarnation ended` in a worker's
//   log) and requests the API refused (its 5xx answers, the clients' reads included).
// - RabbitMQ node (`failover.amqp_node_*`): kill -9 of the node a worker is connected to, and of
//   the cluster queue's leader, alternately; restarted 10 s after the kill.
// Across both (`failover.ha_*`): creates accepted but never `available` (lost), and driver calls
// made twice or overlapping (the fake driver's journal).
// - quorum loss (`failover.quorum_return_*`): two members of three killed for the TTL + 5 s, so
//   every worker's session is lost while its process lives, then restarted together: from the
//   first moment a leader is seen until every worker answers `/readyz` 200 (each fences its own
//   earlier incarnation once its runs settled and revokes that lease; docs/fencing.md), and until
//   the first create completes. The loss itself is the chaos suite's to judge, not timed here.
// The baseline is the lease TTL (`lease.ttl_s`, which the failover suite reports too). Every
// process's log is left in the run's temp dir (`failover-ha/`, printed at the end), and a create
// that never became `available` is printed with its status, to explain a figure that misses.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { configSpec } from '../../../src/config/schema.js';
import { decodeEnd } from '../../../src/membership/incarnation-records.js';
import { clusterQueueName } from '../../../src/routing/topology.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { OpStream } from '../../support/op-stream.js';
import { ClusterClient, readJournal, startWorker } from '../../support/orphans-cluster.js';
import { startHaTopology } from '../../support/topology.js';
import { type HaSetup, leaderRound, type LeaderRound, nodeRound, type NodeRound, quorumRound, type QuorumRound } from '../ha-rounds.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, relative, standalone } from '../types.js';

const CLUSTER = 'fha';
const LEASE_TTL_MS = configSpec.leaseTtlMs.default as number;
/** How long a killed etcd leader stays down (issue 12's scenario). */
const LEADER_DOWN_MS = 6_000;
/** How long a killed RabbitMQ node stays down. */
const NODE_DOWN_MS = 10_000;
/** Two members down for longer than the TTL, so every session is lost. */
const QUORUM_LOSS_MS = LEASE_TTL_MS + 5_000;
/** Client loops creating volumes. */
const LANES = 4;
const WORKERS = ['w1', 'w2', 'w3'];

/** Driver calls made twice or overlapping, so far, in the fake driver's journal. */
async function runTwice(journal: string): Promise<number> {
  const { report } = await readJournal(journal);
  return report.duplicates.length + report.overlaps.length;
}

export const suite: BenchSuite = {
  name: 'failover-ha',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const leaderRounds = ctx.quick ? 1 : 3;
    const nodeKinds: NodeRound['kind'][] = ctx.quick ? ['worker-node', 'queue-leader'] : ['worker-node', 'queue-leader', 'worker-node', 'queue-leader'];
    const quorumRounds = ctx.quick ? 1 : 2;
    ctx.log('starting a three-member etcd and a three-node RabbitMQ …');
    const topology = await startHaTopology();
    const procs: HearthProcess[] = [];
    const kv = new Etcd3({ hosts: topology.etcd.endpoints });
    try {
      ctx.log(`clusters ready in ${(topology.startMs / 1_000).toFixed(1)} s`);
      const prefix = `f${randomUUID().slice(0, 8)}`;
      const journal = join(await mkdtemp(join(tmpdir(), 'hearth-bench-failover-ha-')), 'journal.jsonl');
      const env = {
        HEARTH_ETCD_ENDPOINTS: topology.etcd.endpoints.join(','),
        HEARTH_ETCD_PREFIX: `/bench-${prefix}`,
        HEARTH_AMQP_URL: topology.rabbit.urls.join(','),
        HEARTH_AMQP_PREFIX: prefix,
        HEARTH_CLUSTER: CLUSTER,
        HEARTH_BACKEND: 'be',
        HEARTH_DRIVER_NAME: 'fake',
        HEARTH_DRIVER_FAKE_JOURNAL: journal,
      };
      const api = await startHearth({ name: 'bench-ha-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 });
      procs.push(api);
      for (const host of WORKERS) procs.push(await startWorker(env, host));
      const s: HaSetup = {
        etcd: topology.etcd.local(),
        rabbit: topology.rabbit.local(),
        api,
        workers: procs.slice(1),
        queue: clusterQueueName(prefix, `${CLUSTER}@be`),
        log: ctx.log,
        selfFences: async (since) => {
          const ends = Object.values(await kv.getAll().prefix(`${env.HEARTH_ETCD_PREFIX}/fenced/`).strings()).map(decodeEnd);
          return ends.filter((e) => e.how === 'self' && e.atMs >= since).length;
        },
      };
      const client = new ClusterClient(api);

      // etcd leader and RabbitMQ node rounds: one steady load across them.
      const stream = new OpStream(client, LANES).start();
      const leaders: LeaderRound[] = [];
      for (let n = 1; n <= leaderRounds; n++) leaders.push(await leaderRound(s, stream, n, LEADER_DOWN_MS));
      const nodes: NodeRound[] = [];
      for (const [i, kind] of nodeKinds.entries()) nodes.push(await nodeRound(s, stream, i + 1, kind, NODE_DOWN_MS));
      await stream.stop().catch(() => undefined);
      const lost = stream.failures.length;
      for (const f of stream.failures) ctx.log(`lost: ${f} (its status now: ${await client.status('volume', f.split(':')[0] as string).catch(() => 'unknown')})`);
      const twice = await runTwice(journal);
      ctx.log(`${stream.done.length} creates completed under the etcd and RabbitMQ rounds; ${lost} lost, ${twice} driver call(s) run twice or overlapping`);

      // Quorum losses last: creates in flight at a loss may be left to the orphan sweep.
      const quorums: QuorumRound[] = [];
      for (let n = 1; n <= quorumRounds; n++) quorums.push(await quorumRound(s, client, LANES, n, QUORUM_LOSS_MS));

      const ttl = standalone('lease.ttl_s', LEASE_TTL_MS / 1_000, 's');
      const fig = (name: string, values: readonly number[], p: number): BenchResult => relative(name, percentile(values, p), 's', ttl);
      const leaderStall = leaders.map((r) => r.stallS);
      const nodeStall = nodes.map((r) => r.stallS);
      const ready = quorums.map((r) => r.readyS);
      return [
        fig('failover.etcd_leader_stall_s', leaderStall, 50),
        fig('failover.etcd_leader_stall_max_s', leaderStall, 100),
        standalone('failover.etcd_leader_incarnations_lost', leaders.reduce((a, r) => a + r.incarnationsLost, 0), 'incarnations'),
        standalone('failover.etcd_leader_requests_refused', leaders.reduce((a, r) => a + r.refused, 0), 'requests'),
        fig('failover.etcd_leader_election_s', leaders.map((r) => r.electedS), 50),
        standalone('failover.etcd_leader_rounds', leaderRounds, 'kills'),
        fig('failover.amqp_node_stall_s', nodeStall, 50),
        fig('failover.amqp_node_stall_max_s', nodeStall, 100),
        standalone('failover.amqp_node_requests_refused', nodes.reduce((a, r) => a + r.refused, 0), 'requests'),
        standalone('failover.ha_ops_lost', lost, 'ops'),
        standalone('failover.ha_calls_run_twice', twice, 'calls'),
        standalone('failover.amqp_node_rounds', nodes.length, 'kills'),
        fig('failover.quorum_return_ready_s', ready, 50),
        fig('failover.quorum_return_ready_max_s', ready, 100),
        fig('failover.quorum_return_first_op_s', quorums.map((r) => r.firstOpS), 50),
        standalone('failover.quorum_rounds', quorumRounds, 'losses'),
      ];
    } finally {
      await Promise.allSettled(procs.map((p) => p.stop()));
      // Every process's log (at the default level), for whoever has to explain a figure.
      const logs = join(ctx.tmpDir, 'failover-ha');
      await mkdir(logs, { recursive: true });
      await Promise.all(procs.map((p) => writeFile(join(logs, `${p.name}.log`), p.output())));
      if (procs.length > 0) ctx.log(`process logs in ${logs}`);
      kv.close();
      await topology.stop();
    }
  },
};
