/**
 * `make chaos`: the long fault-suite run. Prints progress, the fault counts and the invariant
 * table; exits 1 when any invariant fails (2 on bad settings). Settings (environment):
 * `CHAOS_KILLS` (default 20), `CHAOS_ZOMBIES` (2), `CHAOS_PARTITIONS` (2), `CHAOS_SECONDS`
 * (budget for injecting faults, default 720; the settle comes on top), `CHAOS_STREAMS` (6),
 * `CHAOS_LEASE_TTL_MS` (3000), `CHAOS_LATENCY_MS` (400), `CHAOS_SEED` (random).
 */
import { formatTable } from './invariants.js';
import { runChaos } from './scenario.js';

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

const options = {
  kills: int('CHAOS_KILLS', 20),
  zombies: int('CHAOS_ZOMBIES', 2),
  partitions: int('CHAOS_PARTITIONS', 2),
  brokerRestarts: 1,
  etcdRestarts: 1,
  maxSeconds: int('CHAOS_SECONDS', 720),
  leaseTtlMs: int('CHAOS_LEASE_TTL_MS', 3_000),
  latencyMs: int('CHAOS_LATENCY_MS', 400),
  streams: int('CHAOS_STREAMS', 6),
  seed: int('CHAOS_SEED', Math.floor(Math.random() * 1_000_000)),
  log: (line: string) => console.log(`[chaos] ${line}`),
};

// Ctrl-C or SIGTERM: exit through process.exit, whose hook kills every server and worker started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

const result = await runChaos(options);
const k = result.faults;
console.log(
  `\n[chaos] ${result.seconds.toFixed(0)} s, seed ${options.seed}: ${k.kill} kills, ${k.zombie} zombies, ${k['partition-pause'] + k['partition-cut']} partitions, ` +
    `${k['broker-restart']} RabbitMQ restarts, ${k['etcd-restart']} etcd restarts; ${result.record.accepted.length} requests accepted, ` +
    `refused ${JSON.stringify(Object.fromEntries(result.refused))}; ${result.settle}\n`,
);
console.log(formatTable(result.rows));
process.exit(result.rows.every((r) => r.result === 'PASS') ? 0 : 1);
