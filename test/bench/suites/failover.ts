// Failover at the default lease TTL: real `hearth serve` processes (an API-only member, a
// rescuer worker with an instant fake driver, and one victim worker per round whose fake driver
// takes ten minutes per call) on the bench's etcd and RabbitMQ. Each round catches a volume
// create mid-call on the victim, stops the victim and measures, from that moment:
// - detect: the op shows in `GET /hearth/v1/orphans` (a fresh sweep: the victim's alive key is
//   gone), and separately in the rescuer's `hearth_orphaned_operations` gauge (its watch-driven
//   detector);
// - takeover: an operator's `workers/cleanup` for that resource, sent the moment the orphan
//   shows, has been carried out by the rescuer — the volume reached its cleanup status (`error`,
//   Cinder's action for an orphaned create) and its op record is gone. The cleanup waits for the
//   victim's fence, so takeover includes it;
// - and, on the bench's own etcd watch: when the victim's alive key vanished (its lease
//   expired) and when its end record (`fenced/<incarnation>`) appeared, and how it was fenced.
// Three kinds of round, each checked against the `how` of the end record it produced:
// - kill (`failover.takeover_s`, today's figure): `kill -9`, with the configuration a deployment
//   that sets nothing gets (`fencing.method` none). The process is gone and ran on this machine,
//   so the rescuer's local process check fences it at once (`process-gone`) whatever the method.
// - fenced (`failover.takeover_fenced_s`): an `exec` fence that succeeds at once. A kill -9 would
//   be fenced by the process check before the command ran (that check applies to a process of
//   this boot and pid namespace, and the bench has no other machine), so the victim is frozen
//   instead (SIGSTOP: its keepalives stop as they do after a kill, but /proc shows it still
//   there), and the rescuer's fence command, test/support/fence-kill.mjs, kills it by its
//   recorded pid and start time and exits 0 — the test analogue of power fencing, as in the
//   fault suite.
// - lock-delay (`failover.takeover_lock_delay_s`): also frozen, with the default configuration:
//   `fencing.method` none and `fencing.lockDelayMs` 0, which means a delay of leaseTtlMs (the
//   least allowed). Nothing fences a frozen process here; its work is taken over once the delay
//   since its death (its lease's expiry, as the rescuer saw it) has passed: about 2 TTL.
// Kill and lock-delay rounds alternate on one rescuer (same configuration, same load); fenced
// rounds run after them on a rescuer configured with the exec fence.
// The baseline is the lease TTL itself: detection cannot be faster than etcd expiring the lease.
// Every round stops its victim at a random point of the keepalive cycle, so stop → expiry varies
// by up to TTL/3 from round to round; what the fence adds is therefore also compared from the expiry
// (`*_after_expiry_s`), where that phase does not enter.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { configSpec } from '../../../src/config/schema.js';
import { decodeEnd } from '../../../src/membership/incarnation-records.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';
import { type BenchContext, type BenchResult, type BenchSuite, percentile, relative, standalone } from '../types.js';

const CLUSTER = 'fo';
const CLUSTER_ID = `${CLUSTER}@be`;
const SLOW_MS = '600000';
const POLL_MS = 25;
// The default, not a bench setting: what a deployment that sets nothing gets.
const LEASE_TTL_MS = configSpec.leaseTtlMs.default as number;
// fencing.lockDelayMs 0 (the default) means leaseTtlMs.
const LOCK_DELAY_MS = (configSpec.fencing.lockDelayMs.default as number) || LEASE_TTL_MS;
const FENCE_KILL = join(import.meta.dirname, '../../support/fence-kill.mjs');

/** How a round stops its victim and which fence must end it. */
interface Kind {
  readonly name: 'kill' | 'fenced' | 'lock-delay';
  readonly stop: 'kill -9' | 'SIGSTOP';
  readonly how: 'process-gone' | 'exec' | 'lock-delay';
}
const KILL: Kind = { name: 'kill', stop: 'kill -9', how: 'process-gone' };
const FENCED: Kind = { name: 'fenced', stop: 'SIGSTOP', how: 'exec' };
const LOCK_DELAY: Kind = { name: 'lock-delay', stop: 'SIGSTOP', how: 'lock-delay' };

/** Times of one round, in seconds from the kill (or freeze). */
interface Round {
  readonly kind: Kind['name'];
  readonly expiredS: number;
  readonly fencedS: number;
  readonly detectS: number;
  readonly detectMetricS: number;
  readonly takeoverS: number;
}

/** What every round uses. */
interface Setup {
  readonly ctx: BenchContext;
  readonly env: Record<string, string>;
  readonly api: ClusterClient;
  readonly journal: string;
  readonly etcd: Etcd3;
}

/** Creates volumes until one lands on `victim` (RabbitMQ hands jobs out round robin); returns its id. */
async function catchOnVictim(client: ClusterClient, journal: string, victim: string): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const id = await client.createVolume();
    const call = await started(journal, 'createVolume', `volume:${id}`);
    if (call.member === `${victim}@be`) return id;
    await client.waitStatus('volume', id, 'available');
  }
  throw new Error(`no create landed on ${victim} in 20 attempts`);
}

/** Resolves with seconds since `from` once `probe` holds; polls every POLL_MS, bounded. */
async function secondsUntil(from: number, probe: () => Promise<boolean>, what: string): Promise<number> {
  await waitFor(async () => (await probe()) || undefined, { timeoutMs: 3 * LEASE_TTL_MS + 30_000, intervalMs: POLL_MS, what });
  return (performance.now() - from) / 1_000;
}

/** Watches, on etcd itself, for `host`'s alive key to vanish and its end record to appear. */
async function watchDeath(etcd: Etcd3, prefix: string, host: string): Promise<{ expired: Promise<number>; ended: Promise<{ at: number; how: string }>; close(): Promise<void> }> {
  let expired!: (at: number) => void;
  let ended!: (end: { at: number; how: string }) => void;
  const out = { expired: new Promise<number>((r) => (expired = r)), ended: new Promise<{ at: number; how: string }>((r) => (ended = r)) };
  const alive = await etcd.watch().key(`${prefix}/alive/${host}`).create();
  alive.on('delete', () => expired(performance.now()));
  const fenced = await etcd.watch().prefix(`${prefix}/fenced/${host}:`).create();
  fenced.on('put', (kv) => ended({ at: performance.now(), how: decodeEnd(kv.value.toString()).how }));
  return { ...out, close: async () => void (await Promise.all([alive.cancel(), fenced.cancel()])) };
}

async function round(s: Setup, rescuer: ClusterClient, n: number, kind: Kind): Promise<Round> {
  const { ctx, env, api, journal, etcd } = s;
  const host = `victim${n}`;
  const victim = await startWorker(env, host, { HEARTH_DRIVER_FAKE_LATENCY_MS: SLOW_MS, HEARTH_LOG_LEVEL: 'warn' });
  const death = await watchDeath(etcd, env.HEARTH_ETCD_PREFIX as string, `${host}@be`);
  try {
    const id = await catchOnVictim(api, journal, host);
    // The rescuer's gauge must start from zero, or its rise would not be this round's.
    await waitFor(async () => (await rescuer.metric('hearth_orphaned_operations', { cluster: CLUSTER_ID })) === 0, { timeoutMs: 30_000, what: 'no orphans before the kill' });
    // A crash does not wait for a keepalive: kill at a random point of the keepalive cycle
    // (every TTL/3), or every round would land at the same phase — a fresh worker is killed
    // about as long after its lease grant as the round takes, which happened to be one interval.
    await new Promise((r) => setTimeout(r, Math.random() * (LEASE_TTL_MS / 3)));
    const killedAt = performance.now();
    if (kind.stop === 'kill -9') await victim.kill();
    else victim.pause();
    const [detectS, detectMetricS] = await Promise.all([
      secondsUntil(killedAt, async () => (await api.orphans()).some((o) => o.id === id), `volume ${id} in the orphans view`),
      secondsUntil(killedAt, async () => (await rescuer.metric('hearth_orphaned_operations', { cluster: CLUSTER_ID })) >= 1, 'the rescuer to count the orphan'),
    ]);
    const cleanup = await api.workCleanup({ resource_id: id, resource_type: 'Volume' });
    if (cleanup.status !== 202 || (cleanup.body.cleaning as unknown[] | undefined)?.length !== 1) throw new Error(`work-cleanup: HTTP ${cleanup.status} ${JSON.stringify(cleanup.body)}`);
    const opKey = `${env.HEARTH_ETCD_PREFIX}/ops/volume/${id}`;
    const takeoverS = await secondsUntil(killedAt, async () => (await api.status('volume', id)) === 'error' && !(await etcd.get(opKey).exists()), `volume ${id} cleaned up`);
    // Both marks precede the takeover (the cleanup waits for the end record): settled by now.
    const expiredS = ((await death.expired) - killedAt) / 1_000;
    const end = await death.ended;
    if (end.how !== kind.how) throw new Error(`round ${n} (${kind.name}): ${host} was fenced by ${end.how}, not ${kind.how}: the figure would not be what it says`);
    const fencedS = (end.at - killedAt) / 1_000;
    ctx.log(
      `round ${n} (${kind.name}): ${kind.stop} → lease expired ${expiredS.toFixed(2)} s, orphan in the API view ${detectS.toFixed(2)} s, ` +
        `in the rescuer's gauge ${detectMetricS.toFixed(2)} s, fenced (${end.how}) ${fencedS.toFixed(2)} s, taken over ${takeoverS.toFixed(2)} s ` +
        `(${(takeoverS - expiredS).toFixed(2)} s after the expiry; TTL ${LEASE_TTL_MS / 1_000} s)`,
    );
    return { kind: kind.name, expiredS, fencedS, detectS, detectMetricS, takeoverS };
  } finally {
    await death.close();
    await victim.kill();
  }
}

/** Runs `kinds` in turn on one rescuer started with `over`, which is stopped afterwards. */
async function rescued(s: Setup, over: Record<string, string>, first: number, kinds: readonly Kind[]): Promise<Round[]> {
  const proc = await startWorker(s.env, `rescuer${first}`, over);
  try {
    const rescuer = new ClusterClient(proc);
    const rounds: Round[] = [];
    for (const [i, kind] of kinds.entries()) rounds.push(await round(s, rescuer, first + i, kind));
    return rounds;
  } finally {
    await proc.stop();
  }
}

/** `a, b, a, b, …` with `na` of a and `nb` of b. */
function alternate<T>(a: T, na: number, b: T, nb: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < Math.max(na, nb); i++) {
    if (i < na) out.push(a);
    if (i < nb) out.push(b);
  }
  return out;
}

export const suite: BenchSuite = {
  name: 'failover',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    // Quick mode: one round of each new kind (a lock-delay round alone takes about 2 TTL).
    const kills = ctx.quick ? 2 : 5;
    const fencedRounds = ctx.quick ? 1 : 5;
    const delayRounds = ctx.quick ? 1 : 3;
    const prefix = `/bench-failover-${randomUUID().slice(0, 8)}`;
    const journal = join(await mkdtemp(join(tmpdir(), 'hearth-bench-failover-')), 'journal.jsonl');
    const env = {
      HEARTH_ETCD_ENDPOINTS: ctx.etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: prefix,
      HEARTH_AMQP_URL: ctx.rabbit.url,
      HEARTH_AMQP_PREFIX: `f${randomUUID().slice(0, 8)}`,
      HEARTH_CLUSTER: CLUSTER,
      HEARTH_BACKEND: 'be',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_LOG_LEVEL: 'warn',
    };
    const exec = { HEARTH_FENCING_METHOD: 'exec', HEARTH_FENCING_EXEC_COMMAND: FENCE_KILL };
    const etcd = new Etcd3({ hosts: ctx.etcd.endpoints });
    let api: HearthProcess | undefined;
    try {
      api = await startHearth({ name: 'bench-failover-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 });
      const s: Setup = { ctx, env, api: new ClusterClient(api), journal, etcd };
      // The victims of a rescuer share its configuration, as a cluster's members do.
      const defaults = await rescued(s, {}, 1, alternate(KILL, kills, LOCK_DELAY, delayRounds));
      const fenced = await rescued({ ...s, env: { ...env, ...exec } }, exec, kills + delayRounds + 1, Array.from({ length: fencedRounds }, () => FENCED));
      const all = [...defaults, ...fenced];
      const of = (kind: Kind['name'], pick: (r: Round) => number): number[] => all.filter((r) => r.kind === kind).map(pick);
      const ttl = standalone('lease.ttl_s', LEASE_TTL_MS / 1_000, 's');
      const fig = (name: string, values: readonly number[], p: number, base = ttl): BenchResult => relative(name, percentile(values, p), 's', base);
      const detect = of('kill', (r) => r.detectS);
      const metric = of('kill', (r) => r.detectMetricS);
      const takeover = of('kill', (r) => r.takeoverS);
      const afterExpiry = fig('failover.takeover_after_expiry_s', of('kill', (r) => r.takeoverS - r.expiredS), 50);
      const fencedAfterExpiry = fig('failover.takeover_fenced_after_expiry_s', of('fenced', (r) => r.takeoverS - r.expiredS), 50, afterExpiry);
      const fromKill = percentile(of('fenced', (r) => r.takeoverS), 50) - percentile(takeover, 50);
      ctx.log(`exec fence vs kill -9, medians: ${fromKill.toFixed(2)} s apart from the kill (the keepalive phase varies by up to ${(LEASE_TTL_MS / 3_000).toFixed(1)} s), ${(fencedAfterExpiry.value - afterExpiry.value).toFixed(2)} s from the expiry`);
      return [
        ttl,
        fig('failover.detect_s', detect, 50),
        fig('failover.detect_max_s', detect, 100),
        fig('failover.detect_metric_s', metric, 50),
        fig('failover.detect_metric_max_s', metric, 100),
        fig('failover.takeover_s', takeover, 50),
        fig('failover.takeover_max_s', takeover, 100),
        standalone('failover.rounds', kills, 'kills'),
        fig('failover.takeover_fenced_s', of('fenced', (r) => r.takeoverS), 50),
        fig('failover.takeover_fenced_max_s', of('fenced', (r) => r.takeoverS), 100),
        standalone('failover.fenced_rounds', fencedRounds, 'freezes'),
        afterExpiry,
        fencedAfterExpiry,
        standalone('fencing.lock_delay_s', LOCK_DELAY_MS / 1_000, 's'),
        fig('failover.takeover_lock_delay_s', of('lock-delay', (r) => r.takeoverS), 50),
        standalone('failover.lock_delay_rounds', delayRounds, 'freezes'),
      ];
    } finally {
      await api?.stop();
      await etcd.delete().prefix(`${prefix}/`);
      etcd.close();
    }
  },
};
