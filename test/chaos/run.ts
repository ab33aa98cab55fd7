/**
 * `make chaos`: the long fault-suite run. Prints progress, the fault counts, the per-fault
 * measures (stall, incarnations ended, refused requests, time to ready) and the invariant
 * table; exits 1 when any invariant fails (2 on bad settings). Settings (environment):
 * `CHAOS_TOPOLOGY` (`single`, or `ha`: a three-member etcd and a three-node RabbitMQ, with the
 * HA faults), `CHAOS_KILLS` (default 20; ha 16, plus the kills run over HA faults),
 * `CHAOS_ZOMBIES` (5; ha 2), `CHAOS_BACKEND_DOWNS` (2), `CHAOS_RELEASE_SWAPS` (2: a worker on the
 * first release, tag v0.1.0, for 12 s and back), `CHAOS_FREEZES` (2: a cluster freeze and thaw),
 * `CHAOS_FAILOVERS` (2: a replication failover to the fake driver's simulated target and back),
 * `CHAOS_REFUSED_FENCES` (2; ha 1), `CHAOS_PARTITIONS` (2; ha 0: no
 * worker-etcd proxies there), `CHAOS_HA_FAULTS` (ha: each HA fault this often, default 2),
 * `CHAOS_OVERLAPS` (ha: HA faults with a worker kill or freeze run over them, default 8),
 * `CHAOS_SECONDS` (budget for injecting faults, default 720; ha 1500; the settle comes on top),
 * `CHAOS_STREAMS` (6), `CHAOS_LEASE_TTL_MS` (3000; ha 10000, hearth's default), `CHAOS_LATENCY_MS` (400), `CHAOS_SEED`
 * (random). Fencing is on (`exec`, test/support/fence-kill.mjs). Prints every fence of the run;
 * writes the run's timeline (SVG, and its data as JSON) to test/chaos/results/.
 */
import { join } from 'node:path';
import { formatFences } from './fence-invariants.js';
import { HA_FAULTS } from './ha-faults.js';
import { formatTable } from './invariants.js';
import { formatMeasures } from './measure.js';
import { runChaos, TOPOLOGIES, type Topology } from './scenario.js';
import { writeTimeline } from './timeline-svg.js';

const RESULTS = join(import.meta.dirname, 'results');

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a whole number ≥ 0, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function topology(): Topology {
  const raw = process.env.CHAOS_TOPOLOGY || 'single';
  const known = TOPOLOGIES.find((t) => t === raw);
  if (known === undefined) {
    console.error(`CHAOS_TOPOLOGY must be one of ${TOPOLOGIES.join(', ')}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return known;
}

const ha = topology() === 'ha';
const haFaults = ha ? int('CHAOS_HA_FAULTS', 2) : 0;
const options = {
  kills: int('CHAOS_KILLS', ha ? 16 : 20),
  zombies: int('CHAOS_ZOMBIES', ha ? 2 : 5),
  refusedFences: int('CHAOS_REFUSED_FENCES', ha ? 1 : 2),
  partitions: int('CHAOS_PARTITIONS', ha ? 0 : 2),
  brokerRestarts: ha ? 0 : 1,
  etcdRestarts: ha ? 0 : 1,
  backendDowns: int('CHAOS_BACKEND_DOWNS', 2),
  releaseSwaps: int('CHAOS_RELEASE_SWAPS', 2),
  freezes: int('CHAOS_FREEZES', 2),
  failovers: int('CHAOS_FAILOVERS', 2),
  haFaults: Object.fromEntries(HA_FAULTS.map((k) => [k, haFaults])),
  overlaps: ha ? int('CHAOS_OVERLAPS', 8) : 0,
  maxSeconds: int('CHAOS_SECONDS', ha ? 1_500 : 720),
  // ha measures the issue's goals, which are set at hearth's default TTL.
  leaseTtlMs: int('CHAOS_LEASE_TTL_MS', ha ? 10_000 : 3_000),
  latencyMs: int('CHAOS_LATENCY_MS', 400),
  streams: int('CHAOS_STREAMS', 6),
  seed: int('CHAOS_SEED', Math.floor(Math.random() * 1_000_000)),
  topology: topology(),
  log: (line: string) => console.log(`[chaos] ${line}`),
};

// Ctrl-C or SIGTERM: exit through process.exit, whose hook kills every server and worker started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

const result = await runChaos(options);
const k = result.faults;
console.log(
  `\n[chaos] ${result.seconds.toFixed(0)} s, seed ${options.seed}: ${k.kill} kills, ${k.zombie} zombies, ${k['fence-refused']} refused fences, ${k['partition-pause'] + k['partition-cut']} partitions, ` +
    `${k['broker-restart']} RabbitMQ restarts, ${k['etcd-restart']} etcd restarts, ${k['release-swap']} swaps to the first release${ha ? `, HA faults ${JSON.stringify(Object.fromEntries(HA_FAULTS.map((f) => [f, k[f]])))}, ${result.elections.length} etcd elections seen` : ''}; ${result.record.accepted.length} requests accepted, ` +
    `refused ${JSON.stringify(Object.fromEntries(result.refused))}; ${result.settle}\n`,
);
console.log(`[chaos] ${formatFences(result.fences, result.timeline.startedAt)}\n`);
console.log(`[chaos] per fault (stall: longest time with no operation completed around it; incarnations ended by it, its own victim left out; refused: stream requests answered 5xx or not at all during it; ready after recovery: from the fault's end, or the etcd election after it, until every process answered /readyz 200):\n${formatMeasures(result.measures)}\n`);
console.log(formatTable(result.rows));
// The picture is a by-product: a failure to draw it is reported, and does not change the verdict.
await writeTimeline(RESULTS, result.timeline).then(
  (files) => console.log(`\n[chaos] timeline: ${files.svg}\n[chaos] latest ${options.topology} timeline: ${files.latest} (data: ${files.data})`),
  (err: unknown) => console.error(`\n[chaos] timeline not written: ${String(err)}`),
);
process.exit(result.rows.every((r) => r.result === 'PASS') ? 0 : 1);
