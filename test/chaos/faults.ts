/**
 * The faults the suite injects, each bounded in time and followed by its recovery: kill -9 of a
 * worker (measured: kill → orphans in the API view, kill → every orphan taken over; then the
 * worker is started again), SIGSTOP past the lease TTL then SIGCONT (its fence kills it first),
 * a partition between one worker and etcd (proxy paused, or connections reset) then healed, a
 * frozen worker whose fence is refused until the operator confirms it, restarts of RabbitMQ
 * and etcd, and a worker whose storage backend goes down (the fake driver's down file) and
 * comes back.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyLayout } from '../../src/etcd/keys.js';
import type { HearthProcess } from '../support/hearth-process.js';
import { BACKEND, type ChaosCluster, ETCD_PREFIX } from './cluster.js';
import type { RefusedFence } from './fence-invariants.js';
import type { BackendOutage } from './backend-invariants.js';
import type { HaFaultKind } from './ha-faults.js';
import type { Freeze, KillTiming } from './invariants.js';
import { call, sleep } from './stream.js';

/** A fault's name, as scheduled. */
export type FaultKind = 'kill' | 'zombie' | 'fence-refused' | 'partition-pause' | 'partition-cut' | 'broker-restart' | 'etcd-restart' | 'backend-down' | 'release-swap' | 'freeze' | 'failover' | HaFaultKind;

const keys = new KeyLayout(ETCD_PREFIX);

/** The incarnation `host` currently runs as, from its alive key (undefined when none). */
async function incarnationOf(cluster: ChaosCluster, host: string): Promise<string | undefined> {
  const text = await cluster.client.get(keys.alive(`${host}@${BACKEND}`)).string();
  return text === null ? undefined : (JSON.parse(text) as { incarnation: string }).incarnation;
}

/** Keys of the ops owned by `incarnation`. */
async function opsOwnedBy(cluster: ChaosCluster, incarnation: string): Promise<string[]> {
  const all = await cluster.client.getAll().prefix(keys.ops()).strings();
  return Object.entries(all)
    .filter(([, v]) => (JSON.parse(v) as { owner: { incarnation: string } | null }).owner?.incarnation === incarnation)
    .map(([k]) => k);
}

/**
 * Picks the victim of a fault: a random running worker that owns ops (polled for up to
 * `waitMs`, so the fault lands mid-operation), else any running worker.
 */
export async function pickVictim(cluster: ChaosCluster, random: () => number, waitMs = 5_000): Promise<string | undefined> {
  const until = Date.now() + waitMs;
  for (;;) {
    const running = cluster.hosts.filter((h) => cluster.worker(h));
    const busy: string[] = [];
    for (const h of running) {
      const inc = await incarnationOf(cluster, h).catch(() => undefined);
      if (inc && (await opsOwnedBy(cluster, inc).catch(() => [])).length > 0) busy.push(h);
    }
    if (busy.length > 0 || Date.now() > until) {
      const from = busy.length > 0 ? busy : running;
      return from[Math.floor(random() * from.length)];
    }
    await sleep(100);
  }
}

/** A worker incarnation a fault took out, and the ops it owned then (etcd keys). */
export interface Victim {
  readonly host: string;
  readonly incarnation: string;
  readonly owned: readonly string[];
}

/** `host`'s current incarnation and the ops it owns; undefined when it has no alive key. */
export async function victimOf(cluster: ChaosCluster, host: string): Promise<Victim | undefined> {
  const incarnation = await incarnationOf(cluster, host).catch(() => undefined);
  if (!incarnation) return undefined;
  return { host, incarnation, owned: await opsOwnedBy(cluster, incarnation).catch(() => []) };
}

/** When a fault's orphans were seen and taken over (epoch ms; absent: not seen). */
export interface OrphanTimes {
  readonly detectedAt?: number;
  readonly takenOverAt?: number;
}

/** How long and how often {@link watchOrphans} looks. */
export interface WatchOptions {
  /** Stop looking for the orphans in the API's view at this time (epoch ms). */
  readonly detectUntil: number;
  /** Stop waiting for the takeover at this time (epoch ms). */
  readonly takeoverUntil: number;
  /** Between two reads of the orphan view. */
  readonly detectPollMs: number;
  /**
   * Count a victim's takeover only once its orphans were seen, and stop when the detection
   * window closed with none seen. For a fault that may not take its victims out (an etcd
   * restart shorter than the lease's safe window), their ops end normally, which must not
   * read as a takeover.
   */
  readonly onlyDetected: boolean;
}

/**
 * Watches the victims' ops after a fault. `detected` resolves with the first time the API's
 * orphan view showed one of them (undefined if none by `detectUntil`); `done` also waits until
 * none of a victim's ops is still owned by it (takeover: a dead incarnation's ops can change
 * hands only so), for every victim (with `onlyDetected`: every victim seen orphaned). Bounded by
 * the options' times; never rejects.
 */
export function watchOrphans(cluster: ChaosCluster, victims: readonly Victim[], o: WatchOptions): { detected: Promise<number | undefined>; done: Promise<OrphanTimes> } {
  const watched = victims.filter((v) => v.owned.length > 0);
  const seen = new Map<string, number>();
  const taken = new Map<string, number>();
  let detectOver = false;
  const detected = (async (): Promise<number | undefined> => {
    while (watched.length > 0 && Date.now() < o.detectUntil && seen.size < watched.length) {
      const res = await call(cluster.api.apiUrl, 'GET', '/hearth/v1/orphans', undefined, { timeoutMs: 2_000 });
      const orphans = (res.body as { orphans?: { owner_incarnation?: string }[] } | null)?.orphans ?? [];
      const now = Date.now();
      for (const v of watched) if (!seen.has(v.incarnation) && orphans.some((x) => x.owner_incarnation === v.incarnation)) seen.set(v.incarnation, now);
      if (seen.size < watched.length) await sleep(o.detectPollMs);
    }
    detectOver = true;
    return seen.size > 0 ? Math.min(...seen.values()) : undefined;
  })();
  const takeover = async (): Promise<void> => {
    while (watched.length > 0 && Date.now() < o.takeoverUntil) {
      for (const v of watched) {
        if (taken.has(v.incarnation)) continue;
        const left = await Promise.all(v.owned.map((k) => cluster.client.get(k).string().catch(() => 'unknown')));
        const stillMine = left.some((x) => x === 'unknown' || (x !== null && (JSON.parse(x) as { owner: { incarnation: string } | null }).owner?.incarnation === v.incarnation));
        if (!stillMine) taken.set(v.incarnation, Date.now());
      }
      if (taken.size === watched.length) return;
      if (o.onlyDetected && detectOver && [...seen.keys()].every((inc) => taken.has(inc))) return;
      await sleep(100);
    }
  };
  const done = Promise.all([detected, takeover()]).then(([detectedAt]): OrphanTimes => {
    const counted = o.onlyDetected ? watched.filter((v) => seen.has(v.incarnation)) : watched;
    const times = counted.flatMap((v) => taken.get(v.incarnation) ?? []);
    const all = counted.length > 0 && times.length === counted.length;
    return { ...(detectedAt === undefined ? {} : { detectedAt }), ...(all ? { takenOverAt: Math.max(...times) } : {}) };
  });
  return { detected, done: done.catch((): OrphanTimes => ({})) };
}

/**
 * kill -9 of `host`; watches the API's orphan view for its ops (detected) and etcd for their
 * takeover, starts the host again once they were detected (or after TTL + 10 s), and returns the
 * timings once every op it owned changed hands (bounded). `extraDetectMs` widens the windows
 * (a kill run over an etcd fault: detection waits for the quorum).
 */
export async function killWorker(cluster: ChaosCluster, host: string, extraDetectMs = 0): Promise<KillTiming> {
  const ttl = cluster.options.leaseTtlMs;
  const inc = await incarnationOf(cluster, host).catch(() => undefined);
  const killedAt = Date.now();
  await cluster.kill(host);
  // Read after the kill: a dead incarnation's ops can no longer change hands except by takeover.
  const owned = inc ? await opsOwnedBy(cluster, inc).catch(() => []) : [];
  const watch = watchOrphans(cluster, inc ? [{ host, incarnation: inc, owned }] : [], {
    detectUntil: killedAt + ttl + 10_000 + extraDetectMs,
    takeoverUntil: killedAt + 90_000 + extraDetectMs,
    detectPollMs: 50,
    onlyDetected: false,
  });
  let restartedAt: number | undefined;
  const restart = async (): Promise<void> => {
    const detectedAt = await watch.detected;
    if (detectedAt === undefined && owned.length > 0) await sleep(Math.max(0, killedAt + ttl + 1_000 - Date.now()));
    await cluster.startWorker(host);
    restartedAt = Date.now();
  };
  const [, times] = await Promise.all([restart(), watch.done]);
  return { host, killedAt, ops: owned.length, ...times, ...(restartedAt === undefined ? {} : { restartedAt }) };
}

/** Sleeps `ms`, or less once `p` has exited (its fence killed it: nothing left to wait for). */
async function unlessGone(p: HearthProcess, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!p.process.alive) return true;
    await sleep(Math.min(100, end - Date.now()));
  }
  return !p.process.alive;
}

/**
 * SIGSTOP of `host` for `pauseMs` (past its lease TTL and the cleanup grace), then SIGCONT —
 * unless its fence killed it first (with the suite's exec fence it does, about a TTL in: the
 * freeze then ends early). `orphans` settles later (within 90 s): when the frozen incarnation's
 * ops were seen orphaned and taken over.
 */
export async function zombie(cluster: ChaosCluster, host: string, pauseMs: number): Promise<{ freeze: Freeze; fenced: boolean; orphans: Promise<OrphanTimes> } | undefined> {
  const p = cluster.worker(host);
  if (!p) return undefined;
  const from = Date.now();
  p.pause();
  const orphans = watchAfter(cluster, [host], from, pauseMs);
  const fenced = await unlessGone(p, pauseMs);
  p.resume();
  return { freeze: { pid: p.pid, from, to: Date.now() }, fenced, orphans };
}

/** One refused-fence fault: what was seen, its window, and (settling later) the takeover. */
export interface Refusal {
  readonly refusal: RefusedFence;
  readonly from: number;
  readonly to: number;
  readonly orphans: Promise<OrphanTimes>;
}

/**
 * A fence that fails: the fence command is told to refuse `host` (a refusal file), then `host`
 * is frozen (SIGSTOP: not gone, so the process check cannot fence it either) while it owns ops
 * (a freeze that caught it idle is undone at once — far below the lease — and tried again,
 * bounded). Its lease expires, every fence attempt is refused and retried; this waits until
 * the API's fence view shows the refusal and two TTLs have passed (the cleanup grace
 * included), checks that its ops are still its own, then confirms the fence as an operator
 * would (`POST /hearth/v1/fences/{incarnation}/confirm`) and kills the frozen process (the
 * operator powered it off). Bounded: gives up waiting for the refusal after `ttl + 30 s`.
 */
export async function refusedFence(cluster: ChaosCluster, host: string): Promise<Refusal | undefined> {
  const ttl = cluster.options.leaseTtlMs;
  const p = cluster.worker(host);
  const incarnation = await incarnationOf(cluster, host).catch(() => undefined);
  if (!p || !incarnation) return undefined;
  const refusalFile = join(cluster.refuseDir, `${host}@${BACKEND}`);
  await writeFile(refusalFile, 'the fault suite refuses this fence (its power switch is out of reach)\n');
  try {
    let from = Date.now();
    let owned: string[] = [];
    for (let tries = 0; tries < 20; tries++) {
      from = Date.now();
      p.pause();
      // Read while frozen: a frozen incarnation's ops can change hands only by takeover.
      owned = await opsOwnedBy(cluster, incarnation).catch(() => []);
      if (owned.length > 0 || tries === 19) break;
      p.resume();
      await sleep(150);
    }
    const watch = watchOrphans(cluster, [{ host, incarnation, owned }], { detectUntil: from + ttl + 30_000, takeoverUntil: from + 90_000, detectPollMs: 100, onlyDetected: false });
    let refusedAttempts = 0;
    const until = from + ttl + 30_000;
    while (Date.now() < until && (refusedAttempts === 0 || Date.now() < from + 2 * ttl + 1_000)) {
      const res = await call(cluster.api.apiUrl, 'GET', '/hearth/v1/fences', undefined, { timeoutMs: 2_000 });
      const awaiting = (res.body as { awaiting?: { incarnation?: string; attempts?: number; last_error?: string | null }[] } | null)?.awaiting ?? [];
      const mine = awaiting.find((a) => a.incarnation === incarnation);
      if (mine && (mine.last_error ?? '').includes('refused')) refusedAttempts = Math.max(1, mine.attempts ?? 0);
      await sleep(200);
    }
    const left = await Promise.all(owned.map((k) => cluster.client.get(k).string().catch(() => null)));
    const stillOwned = left.filter((x) => x !== null && (JSON.parse(x) as { owner: { incarnation: string } | null }).owner?.incarnation === incarnation).length;
    const confirm = await call(cluster.api.apiUrl, 'POST', `/hearth/v1/fences/${encodeURIComponent(incarnation)}/confirm`, { reason: 'fault suite: refused fence confirmed by hand' }, { timeoutMs: 10_000 });
    // Confirmed while it cannot act (stopped); now it never will.
    await cluster.kill(host);
    const to = Date.now();
    const prefix = `${ETCD_PREFIX}/`;
    return {
      refusal: { host, incarnation, owned: owned.map((k) => k.slice(prefix.length)), refusedAttempts, stillOwned, confirmStatus: confirm.status },
      from,
      to,
      orphans: watch.done,
    };
  } finally {
    await rm(refusalFile, { force: true });
  }
}

/**
 * Cuts `host` off etcd (its proxy paused, or its connections reset) for `downMs`, then heals —
 * at once if its fence killed it meanwhile (its lease expired while it was cut off: its peers
 * fence it as they would a frozen one). Returns the window and, settling later, when its ops
 * were seen orphaned and taken over.
 */
export async function partition(cluster: ChaosCluster, host: string, mode: 'pause' | 'cut', downMs: number): Promise<{ from: number; to: number; orphans: Promise<OrphanTimes> } | undefined> {
  const proxy = cluster.proxies.get(host);
  if (!proxy) return undefined;
  const p = cluster.worker(host);
  const from = Date.now();
  if (mode === 'pause') proxy.pause();
  else proxy.cut();
  const orphans = watchAfter(cluster, [host], from, downMs);
  // Its lease expires while it is cut off, and its fence kills it: then there is nothing to heal for.
  if (p) await unlessGone(p, downMs);
  else await sleep(downMs);
  proxy.heal();
  return { from, to: Date.now(), orphans };
}

/**
 * Watches the ops of `hosts`' incarnations in the background after a fault that began at `from`
 * and lasts `faultMs`; read after the fault began (the suite's own etcd client reaches etcd
 * directly, and a frozen or cut-off worker can no longer finish an op on its own).
 */
function watchAfter(cluster: ChaosCluster, hosts: readonly string[], from: number, faultMs: number): Promise<OrphanTimes> {
  const ttl = cluster.options.leaseTtlMs;
  return Promise.all(hosts.map((h) => victimOf(cluster, h)))
    .then((vs) => watchOrphans(cluster, vs.filter((v) => v !== undefined), { detectUntil: from + faultMs + ttl + 10_000, takeoverUntil: from + 90_000, detectPollMs: 100, onlyDetected: true }).done)
    .catch((): OrphanTimes => ({}));
}

/** Restarts RabbitMQ (down for `downMs`); returns the window (stop called … started). */
export async function brokerRestart(cluster: ChaosCluster, downMs: number): Promise<{ from: number; to: number }> {
  const from = Date.now();
  await cluster.servers.restartRabbit(downMs);
  return { from, to: Date.now() };
}

/**
 * Restarts etcd (down for `downMs`). Every worker's incarnation is read first (etcd is needed
 * for that); when the outage outlasts their sessions' safe window their ops become orphans, and
 * `orphans` (settling later) says when they were seen and taken over.
 */
export async function etcdRestart(cluster: ChaosCluster, downMs: number): Promise<{ from: number; to: number; orphans: Promise<OrphanTimes> }> {
  const ttl = cluster.options.leaseTtlMs;
  const victims = (await Promise.all(cluster.hosts.map((h) => victimOf(cluster, h)))).filter((v) => v !== undefined);
  const from = Date.now();
  const watch = watchOrphans(cluster, victims, { detectUntil: from + downMs + ttl + 15_000, takeoverUntil: from + 90_000, detectPollMs: 100, onlyDetected: true });
  await cluster.servers.restartEtcd(downMs);
  return { from, to: Date.now(), orphans: watch.done };
}

/** `host`'s `backend_state` in os-services at microversion 3.49 (undefined: no answer, or no such service). */
async function backendStateOf(cluster: ChaosCluster, host: string): Promise<string | undefined> {
  const res = await call(cluster.api.apiUrl, 'GET', '/v3/admin/os-services?binary=cinder-volume', undefined, { timeoutMs: 2_000, version: 'volume 3.49' });
  const services = (res.body as { services?: { host?: string; backend_state?: string }[] } | null)?.services ?? [];
  return services.find((s) => s.host === `${host}@${BACKEND}`)?.backend_state;
}

/** Polls os-services until `host` shows `state` or `untilMs` passes; the time it was seen, or undefined. */
async function seeBackendState(cluster: ChaosCluster, host: string, state: 'up' | 'down', untilMs: number): Promise<number | undefined> {
  while (Date.now() < untilMs) {
    if ((await backendStateOf(cluster, host).catch(() => undefined)) === state) return Date.now();
    await sleep(200);
  }
  return undefined;
}

/**
 * The backend of `host` goes down — the fake driver's down file appears, as a share unmounted
 * under a live worker would make its check fail — for `holdMs` after os-services shows it
 * (bounded by `seeWithinMs`), while the stream goes on; then the file goes and the worker must
 * come back by itself. Its process, lease and membership are untouched.
 */
export async function backendDown(cluster: ChaosCluster, host: string, holdMs: number, seeWithinMs: number): Promise<BackendOutage> {
  const file = cluster.downFile(host);
  const from = Date.now();
  await writeFile(file, 'chaos: the share is gone\n');
  try {
    const seenDownAt = await seeBackendState(cluster, host, 'down', from + seeWithinMs);
    await sleep(holdMs);
    const to = Date.now();
    await rm(file, { force: true });
    const seenUpAt = await seeBackendState(cluster, host, 'up', to + seeWithinMs);
    return { host, from, to, ...(seenDownAt === undefined ? {} : { seenDownAt }), ...(seenUpAt === undefined ? {} : { seenUpAt }) };
  } finally {
    await rm(file, { force: true });
  }
}
