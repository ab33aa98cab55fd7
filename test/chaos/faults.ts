/**
 * The faults the suite injects, each bounded in time and followed by its recovery: kill -9 of a
 * worker (measured: kill → orphans in the API view, kill → every orphan taken over; then the
 * worker is started again), SIGSTOP past the lease TTL then SIGCONT, a partition between one
 * worker and etcd (proxy paused, or connections reset) then healed, and restarts of RabbitMQ
 * and etcd.
 */
import { KeyLayout } from '../../src/etcd/keys.js';
import { type ChaosCluster, ETCD_PREFIX } from './cluster.js';
import type { Freeze, KillTiming } from './invariants.js';
import { call, sleep } from './stream.js';

/** A fault's name, as scheduled. */
export type FaultKind = 'kill' | 'zombie' | 'partition-pause' | 'partition-cut' | 'broker-restart' | 'etcd-restart';

const keys = new KeyLayout(ETCD_PREFIX);

/** The incarnation `host` currently runs as, from its alive key (undefined when none). */
async function incarnationOf(cluster: ChaosCluster, host: string): Promise<string | undefined> {
  const text = await cluster.client.get(keys.alive(`${host}@be`)).string();
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

/**
 * kill -9 of `host`; watches the API's orphan view for its ops (detected) and etcd for their
 * takeover, starts the host again once they were detected (or after TTL + 10 s), and returns the
 * timings once every op it owned changed hands (bounded).
 */
export async function killWorker(cluster: ChaosCluster, host: string): Promise<KillTiming> {
  const ttl = cluster.options.leaseTtlMs;
  const inc = await incarnationOf(cluster, host).catch(() => undefined);
  const killedAt = Date.now();
  await cluster.kill(host);
  // Read after the kill: a dead incarnation's ops can no longer change hands except by takeover.
  const owned = inc ? await opsOwnedBy(cluster, inc).catch(() => []) : [];
  let detectedAt: number | undefined;
  let takenOverAt: number | undefined;
  const detect = async (): Promise<void> => {
    if (!inc || owned.length === 0) return;
    const until = killedAt + ttl + 10_000;
    while (Date.now() < until && detectedAt === undefined) {
      const res = await call(cluster.api.apiUrl, 'GET', '/hearth/v1/orphans', undefined, { timeoutMs: 2_000 });
      const orphans = (res.body as { orphans?: { owner_incarnation?: string }[] } | null)?.orphans ?? [];
      if (orphans.some((o) => o.owner_incarnation === inc)) detectedAt = Date.now();
      else await sleep(50);
    }
  };
  const takeover = async (): Promise<void> => {
    if (!inc || owned.length === 0) return;
    const until = killedAt + 90_000;
    while (Date.now() < until) {
      const left = await Promise.all(owned.map((k) => cluster.client.get(k).string().catch(() => 'unknown')));
      const stillMine = left.some((v) => v === 'unknown' || (v !== null && (JSON.parse(v) as { owner: { incarnation: string } | null }).owner?.incarnation === inc));
      if (!stillMine) {
        takenOverAt = Date.now();
        return;
      }
      await sleep(100);
    }
  };
  const restart = async (): Promise<void> => {
    await detect();
    if (detectedAt === undefined && owned.length > 0) await sleep(Math.max(0, killedAt + ttl + 1_000 - Date.now()));
    await cluster.startWorker(host);
  };
  await Promise.all([restart(), takeover()]);
  return { host, killedAt, ops: owned.length, ...(detectedAt === undefined ? {} : { detectedAt }), ...(takenOverAt === undefined ? {} : { takenOverAt }) };
}

/** SIGSTOP of `host` for `pauseMs` (past its lease TTL and the cleanup grace), then SIGCONT. */
export async function zombie(cluster: ChaosCluster, host: string, pauseMs: number): Promise<Freeze | undefined> {
  const p = cluster.worker(host);
  if (!p) return undefined;
  const from = Date.now();
  p.pause();
  await sleep(pauseMs);
  p.resume();
  return { pid: p.pid, from, to: Date.now() };
}

/** Cuts `host` off etcd (its proxy paused, or its connections reset) for `downMs`, then heals. */
export async function partition(cluster: ChaosCluster, host: string, mode: 'pause' | 'cut', downMs: number): Promise<void> {
  const proxy = cluster.proxies.get(host);
  if (!proxy) return;
  if (mode === 'pause') proxy.pause();
  else proxy.cut();
  await sleep(downMs);
  proxy.heal();
}

/** Restarts RabbitMQ (down for `downMs`). */
export async function brokerRestart(cluster: ChaosCluster, downMs: number): Promise<void> {
  await cluster.rabbit.restart(downMs);
}

/** Restarts etcd (down for `downMs`). */
export async function etcdRestart(cluster: ChaosCluster, downMs: number): Promise<void> {
  await cluster.etcd.restart(downMs);
}
