/**
 * The fault suite's scenario runner: starts a chaos cluster, runs the stream of mixed operations
 * and the bad inputs while the scheduled faults happen one after another, settles, records
 * everything the invariants need, and checks them. `test/integration/chaos/short.test.ts` runs a
 * short schedule inside `make test`; `test/chaos/run.ts` (`make chaos`) a long one.
 */
import { KeyLayout } from '../../src/etcd/keys.js';
import { readJournal } from '../support/orphans-cluster.js';
import { buildRelease } from '../support/release-build.js';
import { drainDeadLetters, publishBadMessage, sendBadRequest } from './bad-inputs.js';
import { AMQP_PREFIX, ChaosCluster, CLUSTER_ID, ETCD_PREFIX, REPLICA_ID } from './cluster.js';
import { failoverFault, freezeFault, type ReplicationFault, replicationRows } from './replication-faults.js';
import type { BackendOutage } from './backend-invariants.js';
import { backendDown, brokerRestart, etcdRestart, type FaultKind, killWorker, type OrphanTimes, partition, pickVictim, refusedFence, zombie } from './faults.js';
import { type FenceEvent, fenceEvents, type RefusedFence } from './fence-invariants.js';
import { HA_FAULTS, type HaFaultKind, isHaFault, LeaderWatch } from './ha-faults.js';
import { decodeHistory, readHistory } from './history.js';
import { type BadInput, checkInvariants, type Freeze, type InvariantRow, type KillTiming, type RunRecord } from './invariants.js';
import { type FaultMeasure, type FaultRecord, faultRows, measureFault, type ReadySample } from './measure.js';
import { type Injected, injectWithOverlap, overlapPlan } from './overlap.js';
import type { Topology } from './servers.js';
import { call, sleep, Stream } from './stream.js';
import type { FaultMark, TimelineRun } from './timeline.js';
import { releaseSwap, type ReleaseSwap, releaseSwapRow } from './upgrade-faults.js';

export { TOPOLOGIES, type Topology } from './servers.js';

/** What a run does. */
export interface ChaosOptions {
  readonly kills: number;
  readonly zombies: number;
  /** Frozen workers whose fence is refused until the suite confirms it by hand. */
  readonly refusedFences: number;
  readonly partitions: number;
  readonly brokerRestarts: number;
  readonly etcdRestarts: number;
  /** Workers whose storage backend goes down for a while and comes back (default 0). */
  readonly backendDowns?: number;
  /**
   * Upgrade faults (default 0): a worker rolled back to the first release (tag v0.1.0, built
   * from the repository's history) for a while, then forward to the current tree again.
   */
  readonly releaseSwaps?: number;
  /** Freezes of the whole cluster for a few seconds, then thaws (default 0). */
  readonly freezes?: number;
  /**
   * Replication failovers to the fake driver's simulated target and back (default 0; turns the
   * fake driver's replication on): while failed over, no member may write to the old primary.
   */
  readonly failovers?: number;
  /** `ha` only: how often each HA fault (ha-faults.ts) is injected (a kind left out: never). */
  readonly haFaults?: Partial<Readonly<Record<HaFaultKind, number>>>;
  /**
   * `ha` only: how many of the HA faults get a worker kill or freeze run over them (one at a
   * time, spread at random), or which kinds (the first of each gets a kill).
   */
  readonly overlaps?: number | readonly HaFaultKind[];
  /** Stop scheduling faults after this long (the settle comes on top). */
  readonly maxSeconds: number;
  readonly leaseTtlMs: number;
  readonly latencyMs: number;
  /** Concurrent client loops of the stream. */
  readonly streams: number;
  readonly seed: number;
  /** The servers (default `single`: one etcd member, one RabbitMQ node; `ha`: three of each), and the timeline's name. */
  readonly topology?: Topology;
  readonly log: (line: string) => void;
}

/** What a run produced. */
export interface ChaosResult {
  readonly rows: InvariantRow[];
  readonly record: RunRecord;
  readonly faults: Readonly<Record<FaultKind, number>>;
  readonly seconds: number;
  readonly refused: ReadonlyMap<number, number>;
  readonly settle: string;
  /** When operations completed, each fault's marks and the fences, for the timeline picture. */
  readonly timeline: TimelineRun;
  /** Every end record of an incarnation that died without a clean leave (etcd), for the report. */
  readonly fences: readonly FenceEvent[];
  /** Each fault measured: stall, incarnations ended, refused requests, time to ready (measure.ts). */
  readonly measures: readonly FaultMeasure[];
  /** etcd elections the suite saw (`ha`), epoch ms. */
  readonly elections: readonly number[];
}

const BAD_NAME = 'chaos-bad-';


/** A bad message that was published (confirmed). */
type BadMessage = { readonly what: string; readonly correlationId: string; readonly id?: string };

/** A small seeded generator (mulberry32), so a schedule can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The faults in the order they run: kills spread out, the restarts in the middle (pure). */
export function schedule(
  o: Pick<ChaosOptions, 'kills' | 'zombies' | 'refusedFences' | 'partitions' | 'brokerRestarts' | 'etcdRestarts' | 'backendDowns' | 'releaseSwaps' | 'haFaults' | 'freezes' | 'failovers'>,
  random: () => number,
): FaultKind[] {
  const others: FaultKind[] = [
    ...HA_FAULTS.flatMap((k) => Array<FaultKind>(o.haFaults?.[k] ?? 0).fill(k)),
    ...Array<FaultKind>(o.zombies).fill('zombie'),
    ...Array<FaultKind>(o.refusedFences).fill('fence-refused'),
    ...Array.from({ length: o.partitions }, (_, i): FaultKind => (i % 2 === 0 ? 'partition-pause' : 'partition-cut')),
    ...Array<FaultKind>(o.brokerRestarts).fill('broker-restart'),
    ...Array<FaultKind>(o.etcdRestarts).fill('etcd-restart'),
    ...Array<FaultKind>(o.backendDowns ?? 0).fill('backend-down'),
    ...Array<FaultKind>(o.releaseSwaps ?? 0).fill('release-swap'),
    ...Array<FaultKind>(o.freezes ?? 0).fill('freeze'),
    ...Array<FaultKind>(o.failovers ?? 0).fill('failover'),
  ];
  for (let i = others.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [others[i], others[j]] = [others[j] as FaultKind, others[i] as FaultKind];
  }
  // One kill first (the stream is warm by then), then the others evenly between the kills.
  const out: FaultKind[] = [];
  const slots = Math.max(1, o.kills);
  for (let k = 0; k < slots; k++) {
    if (k < o.kills) out.push('kill');
    const from = Math.floor((k * others.length) / slots);
    const to = Math.floor(((k + 1) * others.length) / slots);
    out.push(...others.slice(from, to));
  }
  return out;
}

/** Runs the scenario and returns the checked record. Always stops what it started. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  const random = seeded(o.seed);
  const ttl = o.leaseTtlMs;
  const topology = o.topology ?? 'single';
  if (topology === 'ha' && (o.partitions > 0 || o.brokerRestarts > 0 || o.etcdRestarts > 0)) throw new Error('the ha topology has no worker-etcd partitions and no whole-server restarts: its HA faults replace them');
  if (topology !== 'ha' && Object.values(o.haFaults ?? {}).some((n) => n > 0)) throw new Error('HA faults need the ha topology');
  o.log(`starting ${topology === 'ha' ? 'a three-member etcd, a three-node RabbitMQ' : 'etcd, RabbitMQ'}, an API process and 3 workers (lease TTL ${ttl} ms, driver latency ${o.latencyMs} ms, fencing exec: fence-kill.mjs, seed ${o.seed})`);
  // Built before the servers start: the first build of a machine compiles the release.
  const releaseRoot = (o.releaseSwaps ?? 0) > 0 ? (await buildRelease()).root : undefined;
  const cluster = await ChaosCluster.start({ workers: 3, leaseTtlMs: ttl, latencyMs: o.latencyMs, topology, replication: (o.failovers ?? 0) > 0 });
  cluster.releaseRoot = releaseRoot;
  const leaders = cluster.servers.ha ? new LeaderWatch(cluster.servers.ha.etcd) : undefined;
  const stream = new Stream(() => cluster.api.apiUrl, 60_000, 'chaos-');
  const kills: KillTiming[] = [];
  const freezes: Freeze[] = [];
  const badInputs: BadInput[] = [];
  const badMessages: BadMessage[] = [];
  const refusals: RefusedFence[] = [];
  const counts = Object.fromEntries(
    (['kill', 'zombie', 'fence-refused', 'partition-pause', 'partition-cut', 'broker-restart', 'etcd-restart', 'backend-down', 'release-swap', 'freeze', 'failover', ...HA_FAULTS] as const).map((k) => [k, 0]),
  ) as Record<FaultKind, number>;
  const outages: BackendOutage[] = [];
  const swaps: ReleaseSwap[] = [];
  const replication: ReplicationFault[] = [];
  const marks: { mark: NonNullable<Injected['mark']>; readyAt?: number; orphans?: Promise<OrphanTimes> }[] = [];
  const records: (Omit<FaultRecord, 'mark'> & { index: number })[] = [];
  const scheduled = schedule(o, random);
  const overlapAt = overlapPlan(scheduled, o.overlaps ?? 0, random);
  let badDone = false;
  try {
    o.log(`cluster up after ${((Date.now() - started) / 1000).toFixed(1)} s; stream of ${o.streams} clients starts`);
    const streamStartedAt = Date.now();
    stream.start(o.streams);
    const bad = (async () => {
      for (let n = 0; !badDone; n++) {
        await sleep(700 + random() * 600);
        if (n % 2 === 0) {
          const r = await sendBadRequest(cluster.api.apiUrl, BAD_NAME, n / 2);
          if (r) badInputs.push(r);
        } else {
          const m = await publishBadMessage(cluster.servers.amqpUrl(), AMQP_PREFIX, `${AMQP_PREFIX}.volume.${CLUSTER_ID}`, (n - 1) / 2);
          if (m) badMessages.push(m);
        }
      }
    })();
    await sleep(3_000);
    const deadline = started + o.maxSeconds * 1_000;
    for (const [i, fault] of scheduled.entries()) {
      if (Date.now() > deadline) {
        o.log(`time budget of ${o.maxSeconds} s spent: no more faults`);
        break;
      }
      const t0 = Date.now();
      const before = await cluster.incarnations();
      const samples: ReadySample[] = [];
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const at = Date.now();
          samples.push({ at, notReady: await cluster.notReadyNow() });
          await sleep(Math.max(0, at + 100 - Date.now()));
        }
      })();
      const seen = { kills, freezes, refusals, outages, swaps, replication };
      const overlap = overlapAt.get(i);
      const { detail, mark, orphans, victim, recoveredAt, overlap: overlapLabel } = isHaFault(fault)
        ? await injectWithOverlap(cluster, fault, random, ttl, counts[fault], overlap, seen, counts, leaders)
        : await inject(cluster, fault, random, ttl, seen);
      counts[fault]++;
      const t1 = Date.now();
      let readyAt: number | undefined;
      const ready = await cluster.recover(90_000).then(
        (restarted) => {
          readyAt = Date.now();
          return `${restarted.length ? `started again after their fence: ${restarted.join(', ')}; ` : ''}every worker ready ${readyAt - t1} ms later`;
        },
        (err: unknown) => `NOT every worker ready: ${String(err)}`,
      );
      if (mark) marks.push({ mark, ...(readyAt === undefined ? {} : { readyAt }), ...(orphans ? { orphans } : {}) });
      o.log(`[${((t1 - started) / 1000).toFixed(0)} s] ${fault} ${detail} (${t1 - t0} ms); ${ready}; accepted so far ${stream.accepted.length}`);
      await sleep(1_000 + random() * 2_000);
      probing = false;
      await probe;
      if (mark) {
        const after = await cluster.incarnations();
        const endedHosts = [...before].filter(([h, inc]) => h !== victim && after.get(h) !== inc).map(([h]) => h);
        records.push({ index: marks.length - 1, recoveredAt: recoveredAt ?? mark.endedAt, samples, endedHosts, ...(overlapLabel ? { overlap: overlapLabel } : {}), ...(overlapLabel && victim ? { victim } : {}) });
      }
    }
    o.log('faults done; stopping the stream and settling');
    badDone = true;
    await Promise.all([stream.stop(), bad]);
    const streamStoppedAt = Date.now();
    const faults: FaultMark[] = [];
    for (const m of marks) faults.push({ ...m.mark, ...(m.orphans ? await m.orphans : {}), ...(m.readyAt === undefined ? {} : { readyAt: m.readyAt }) });
    const elections = (await leaders?.stop().then(() => leaders.elections.map((e) => e.at))) ?? [];
    const timeline: TimelineRun = {
      topology,
      seed: o.seed,
      startedAt: streamStartedAt,
      endedAt: streamStoppedAt,
      completions: stream.accepted.flatMap((a) => (a.completedAt === undefined ? [] : [a.completedAt])),
      faults,
    };
    const settle = await settleCluster(cluster, ttl);
    o.log(`settled: ${settle}`);
    const deathFaults = { kills: counts.kill, zombies: counts.zombie, refusedFences: counts['fence-refused'] };
    // A new etcd leader extends every lease: a kill's detection clock starts at the later of the kill and an election before its detection.
    const timedKills = kills.map((k): KillTiming => {
      const e = elections.filter((t) => t > k.killedAt && t <= (k.detectedAt ?? k.killedAt + 60_000)).at(-1);
      return e === undefined ? k : { ...k, electedAt: e };
    });
    const record = { ...(await collect(cluster, stream, { kills: timedKills, freezes, refusals, deathFaults }, badInputs, badMessages, ttl)), outages };
    const measures = records.map((r) => measureFault({ ...r, mark: faults[r.index]! }, timeline.completions, stream.refusals.filter((x) => x.status === 0 || x.status >= 500).map((x) => x.at), streamStoppedAt));
    const haScheduled = Object.fromEntries(HA_FAULTS.map((k) => [k, o.haFaults?.[k] ?? 0]));
    const callsByPid = new Map<number, number>();
    for (const e of (await readJournal(cluster.journal)).entries) if (e.event === 'start') callsByPid.set(e.pid, (callsByPid.get(e.pid) ?? 0) + 1);
    const journal = await readJournal(cluster.journal);
    const rows = [
      ...checkInvariants(record),
      ...releaseSwapRow(swaps, record.journal, callsByPid),
      ...replicationRows(replication, journal.entries, journal.report.calls),
      ...faultRows(measures, haScheduled),
    ];
    const fences = fenceEvents(record.history);
    const withFences: TimelineRun = { ...timeline, fences: fences.map((f) => ({ atMs: f.atMs, host: f.host.replace(/@.*$/, ''), how: f.how })) };
    return { rows, record, faults: counts, seconds: (Date.now() - started) / 1000, refused: stream.refused, settle, timeline: withFences, fences, measures, elections };
  } finally {
    badDone = true;
    await leaders?.stop();
    await cluster.stopAll().catch(() => undefined);
    await cluster.close().catch(() => undefined);
  }
}

async function inject(
  cluster: ChaosCluster,
  fault: Exclude<FaultKind, HaFaultKind>,
  random: () => number,
  ttl: number,
  seen: { kills: KillTiming[]; freezes: Freeze[]; refusals: RefusedFence[]; outages: BackendOutage[]; swaps: ReleaseSwap[]; replication: ReplicationFault[] },
): Promise<Injected> {
  const anyHost = async (): Promise<string> => (await pickVictim(cluster, random)) ?? 'w1';
  switch (fault) {
    case 'kill': {
      const host = await pickVictim(cluster, random);
      if (!host) return { detail: 'no running worker' };
      const k = await killWorker(cluster, host);
      seen.kills.push(k);
      const ms = (t: number | undefined): string => (t === undefined ? 'n/a' : `${t - k.killedAt} ms`);
      const times = { ...(k.detectedAt === undefined ? {} : { detectedAt: k.detectedAt }), ...(k.takenOverAt === undefined ? {} : { takenOverAt: k.takenOverAt }) };
      return {
        detail: `${host} owning ${k.ops} ops: detected ${ms(k.detectedAt)}, taken over ${ms(k.takenOverAt)}`,
        mark: { kind: fault, target: host, startedAt: k.killedAt, endedAt: k.restartedAt ?? Date.now() },
        orphans: Promise.resolve(times),
        victim: host,
      };
    }
    case 'zombie': {
      const host = await anyHost();
      const z = await zombie(cluster, host, 2 * ttl + 3_000);
      if (!z) return { detail: `${host} not running` };
      seen.freezes.push(z.freeze);
      const how = z.fenced ? `killed by its fence ${z.freeze.to - z.freeze.from} ms in` : `SIGCONT after ${z.freeze.to - z.freeze.from} ms, NOT fenced meanwhile`;
      return { detail: `${host} stopped (up to ${2 * ttl + 3_000} ms): ${how}`, mark: { kind: fault, target: host, startedAt: z.freeze.from, endedAt: z.freeze.to }, orphans: z.orphans, victim: host };
    }
    case 'fence-refused': {
      const host = await anyHost();
      const r = await refusedFence(cluster, host);
      if (!r) return { detail: `${host} not running` };
      seen.refusals.push(r.refusal);
      const x = r.refusal;
      return {
        detail: `${host} stopped, ${x.refusedAttempts > 0 ? "its fence refused (the API view said so)" : "NO refusal seen in the API view"}; ${x.stillOwned} of ${x.owned.length} ops still its own after ${r.to - r.from} ms; confirmed by hand (HTTP ${x.confirmStatus})`,
        mark: { kind: fault, target: host, startedAt: r.from, endedAt: r.to },
        orphans: r.orphans,
        victim: host,
      };
    }
    case 'partition-pause':
    case 'partition-cut': {
      const host = await anyHost();
      const p = await partition(cluster, host, fault === 'partition-pause' ? 'pause' : 'cut', ttl + 3_000);
      if (!p) return { detail: `${host}: no proxy` };
      return { detail: `${host} cut off etcd ${p.to - p.from} ms (up to ${ttl + 3_000})`, mark: { kind: fault, target: host, startedAt: p.from, endedAt: p.to }, orphans: p.orphans, victim: host };
    }
    case 'broker-restart': {
      const b = await brokerRestart(cluster, 3_000);
      return { detail: 'down 3 s', mark: { kind: fault, target: 'RabbitMQ', startedAt: b.from, endedAt: b.to } };
    }
    case 'etcd-restart': {
      const e = await etcdRestart(cluster, 2_000);
      return { detail: 'down 2 s', mark: { kind: fault, target: 'etcd', startedAt: e.from, endedAt: e.to }, orphans: e.orphans };
    }
    case 'backend-down': {
      // A busy worker, so the fault lands while it has work: what it runs finishes, new jobs go elsewhere.
      const host = await anyHost();
      const b = await backendDown(cluster, host, 4_000, 15_000);
      seen.outages.push(b);
      const ms = (t: number | undefined, from: number): string => (t === undefined ? 'NOT seen' : `seen after ${t - from} ms`);
      return { detail: `${host}: down in os-services ${ms(b.seenDownAt, b.from)}, up again ${ms(b.seenUpAt, b.to)}`, mark: { kind: fault, target: host, startedAt: b.from, endedAt: b.to } };
    }
    case 'freeze': {
      const f = await freezeFault(cluster, 3_000);
      seen.replication.push(f);
      return { detail: `cluster frozen ${f.to - f.from} ms${f.problem ? ` (${f.problem})` : ''}`, mark: { kind: fault, target: 'the cluster', startedAt: f.from, endedAt: f.to } };
    }
    case 'failover': {
      const f = await failoverFault(cluster, 5_000);
      seen.replication.push(f);
      return { detail: `failed over to ${REPLICA_ID} and back in ${f.to - f.from} ms${f.problem ? ` (${f.problem})` : ''}`, mark: { kind: fault, target: 'the cluster', startedAt: f.from, endedAt: f.to } };
    }
    case 'release-swap': {
      // A busy worker: the rollback lands while it has work, which its SIGTERM drains.
      const host = await anyHost();
      const w = await releaseSwap(cluster, host, 12_000);
      seen.swaps.push(w);
      return { detail: `${host} on the first release for ${w.to - w.from} ms${w.error ? ` (NOT started: ${w.error})` : ''}, then the current tree again`, mark: { kind: fault, target: host, startedAt: w.from, endedAt: w.to } };
    }
  }
}

/** Waits for the ops/ prefix to empty; asks for a work-cleanup once if it does not. */
async function settleCluster(cluster: ChaosCluster, ttl: number): Promise<string> {
  await cluster.recover(90_000).catch(() => undefined);
  const ops = async (): Promise<number> => (await cluster.client.getAll().prefix(new KeyLayout(ETCD_PREFIX).ops()).keys()).length;
  const t0 = Date.now();
  const until = async (ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if ((await ops().catch(() => 1)) === 0) return true;
      await sleep(250);
    }
    return false;
  };
  if (await until(4 * ttl + 30_000)) return `ops/ empty ${Date.now() - t0} ms after the stream stopped, without help`;
  const res = await call(cluster.api.apiUrl, 'POST', '/v3/admin/workers/cleanup', { cluster_name: CLUSTER_ID }, { timeoutMs: 10_000 });
  const done = await until(30_000);
  return `${done ? 'ops/ empty' : 'ops/ NOT empty'} after a work-cleanup (HTTP ${res.status}), ${Date.now() - t0} ms after the stream stopped`;
}

async function collect(
  cluster: ChaosCluster,
  stream: Stream,
  seen: { kills: KillTiming[]; freezes: Freeze[]; refusals: RefusedFence[]; deathFaults: RunRecord['deathFaults'] },
  badInputs: BadInput[],
  badMessages: readonly BadMessage[],
  ttl: number,
): Promise<RunRecord> {
  const keys = new KeyLayout(ETCD_PREFIX);
  const accepted = stream.requests();
  const endStatus = new Map<string, string>();
  const listed: RunRecord['listed'][number][] = [];
  for (const type of ['volume', 'snapshot'] as const) {
    const all = await cluster.client.getAll().prefix(keys.resources(type)).strings();
    for (const v of Object.values(all)) {
      const r = JSON.parse(v) as { id: string; status: string; name?: string | null };
      listed.push({ type, id: r.id, status: r.status, name: r.name ?? null });
      endStatus.set(`${type}/${r.id}`, r.status);
    }
  }
  for (const a of accepted) if (!endStatus.has(`${a.type}/${a.id}`)) endStatus.set(`${a.type}/${a.id}`, 'deleted');
  const opsLeft = await cluster.client.getAll().prefix(keys.ops()).keys();
  const dead = await drainDeadLetters(cluster.servers.amqpUrl(), `${AMQP_PREFIX}.dead`);
  // One live member's watch (the leader's, in ha): a stream over the suite's multi-member client could land on a member still catching up.
  const historyClient = await cluster.servers.liveClient();
  const history = decodeHistory(ETCD_PREFIX, await readHistory(historyClient, ETCD_PREFIX).finally(() => historyClient.close()));
  const { report } = await readJournal(cluster.journal);
  const touched = (id: string | undefined): boolean => id !== undefined && (listed.some((x) => x.id === id) || report.calls.some((c) => c.resource.endsWith(`:${id}`)));
  const amqpInputs: BadInput[] = badMessages.map((m) => ({ what: `${m.what} (${m.correlationId})`, outcome: dead.has(m.correlationId) ? 'dead-lettered' : 'missing', touched: touched(m.id) }));
  const processes = await cluster.stopAll();
  return {
    leaseTtlMs: ttl,
    accepted,
    endStatus,
    listed,
    journal: report,
    history,
    opsLeft,
    processes,
    kills: seen.kills,
    freezes: seen.freezes,
    deathFaults: seen.deathFaults,
    refusals: seen.refusals,
    badInputs: [...badInputs, ...amqpInputs],
    badName: BAD_NAME,
  };
}
