/**
 * `make chaos`: the long fault-suite run. Prints progress, the fault counts and the invariant
 * table; exits 1 when any invariant fails (2 on bad settings). Settings (environment):
 * `CHAOS_KILLS` (default 20), `CHAOS_ZOMBIES` (5), `CHAOS_REFUSED_FENCES` (2), `CHAOS_PARTITIONS` (2), `CHAOS_BACKEND_DOWNS` (2), `CHAOS_SECONDS`
 * (budget for injecting faults, default 720; the settle comes on top), `CHAOS_STREAMS` (6),
 * `CHAOS_LEASE_TTL_MS` (3000), `CHAOS_LATENCY_MS` (400), `CHAOS_SEED` (random), `CHAOS_TOPOLOGY`
 * (`single`). Fencing is on (`exec`, test/support/fence-kill.mjs). Prints every fence of the run;
 * writes the run's timeline (SVG, and its data as JSON) to test/chaos/results/.
 */
import { join } from 'node:path';
import { formatFences } from './fence-invariants.js';
import { formatTable } from './invariants.js';
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

const options = {
  kills: int('CHAOS_KILLS', 20),
  zombies: int('CHAOS_ZOMBIES', 5),
  refusedFences: int('CHAOS_REFUSED_FENCES', 2),
  partitions: int('CHAOS_PARTITIONS', 2),
  brokerRestarts: 1,
  etcdRestarts: 1,
  backendDowns: int('CHAOS_BACKEND_DOWNS', 2),
  maxSeconds: int('CHAOS_SECONDS', 720),
  leaseTtlMs: int('CHAOS_LEASE_TTL_MS', 3_000),
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
    `${k['broker-restart']} RabbitMQ restarts, ${k['etcd-restart']} etcd restarts; ${result.record.accepted.length} requests accepted, ` +
    `refused ${JSON.stringify(Object.fromEntries(result.refused))}; ${result.settle}\n`,
);
console.log(`[chaos] ${formatFences(result.fences, result.timeline.startedAt)}\n`);
console.log(formatTable(result.rows));
// The picture is a by-product: a failure to draw it is reported, and does not change the verdict.
await writeTimeline(RESULTS, result.timeline).then(
  (files) => console.log(`\n[chaos] timeline: ${files.svg}\n[chaos] latest ${options.topology} timeline: ${files.latest} (data: ${files.data})`),
  (err: unknown) => console.error(`\n[chaos] timeline not written: ${String(err)}`),
);
process.exit(result.rows.every((r) => r.result === 'PASS') ? 0 : 1);
