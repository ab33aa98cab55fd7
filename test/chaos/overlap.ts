/**
 * Worker faults run over HA faults (one at a time): which scheduled HA faults get one, and the
 * injection of both — the worker first, while etcd still answers, the HA fault 300 ms later.
 */
import type { ChaosCluster } from './cluster.js';
import { type FaultKind, killWorker, type OrphanTimes, pickVictim, zombie } from './faults.js';
import type { RefusedFence } from './fence-invariants.js';
import { type HaFaultKind, injectHa, isHaFault, type LeaderWatch } from './ha-faults.js';
import type { Freeze, KillTiming } from './invariants.js';
import { sleep } from './stream.js';
import type { FaultMark } from './timeline.js';

/** What one injection did: the log line's detail, and the fault's marks (none when nothing was hit). */
export type Injected = {
  readonly detail: string;
  readonly mark?: Omit<FaultMark, 'readyAt' | 'detectedAt' | 'takenOverAt'>;
  readonly orphans?: Promise<OrphanTimes>;
  /** The worker the fault (or its overlap) took out on purpose: its incarnation's end is not the fault's cost. */
  readonly victim?: string;
  /** When the cause was gone (the fault's end, or the election after it); default the mark's end. */
  readonly recoveredAt?: number;
  /** A worker fault run over an HA fault. */
  readonly overlap?: string;
};

/**
 * Which scheduled HA faults get a worker fault run over them (pure): `count` of them, spread by
 * `random`; etcd faults a kill, RabbitMQ faults alternately a kill and a freeze (a frozen
 * worker's fence needs etcd, so it is not paired with an etcd fault).
 */
export function overlapPlan(scheduled: readonly FaultKind[], count: number | readonly HaFaultKind[], random: () => number): Map<number, 'kill' | 'zombie'> {
  if (typeof count !== 'number') return new Map(count.flatMap((k) => (scheduled.includes(k) ? [[scheduled.indexOf(k), 'kill' as const]] : [])));
  const ha = scheduled.flatMap((f, i) => (isHaFault(f) ? [i] : []));
  for (let i = ha.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ha[i], ha[j]] = [ha[j] as number, ha[i] as number];
  }
  const out = new Map<number, 'kill' | 'zombie'>();
  let rabbit = 0;
  for (const i of ha.slice(0, count).sort((a, b) => a - b)) out.set(i, scheduled[i]!.startsWith('rabbit-') && rabbit++ % 2 === 1 ? 'zombie' : 'kill');
  return out;
}

/**
 * One HA fault, with a worker fault run over it when asked: the worker is killed (or frozen)
 * first, while etcd still answers (so its ops are read), and the HA fault follows 300 ms later;
 * the kill's orphans are then detected and taken over through the fault.
 */
export async function injectWithOverlap(
  cluster: ChaosCluster,
  fault: HaFaultKind,
  random: () => number,
  ttl: number,
  n: number,
  overlap: 'kill' | 'zombie' | undefined,
  seen: { kills: KillTiming[]; freezes: Freeze[]; refusals: RefusedFence[] },
  counts: Record<FaultKind, number>,
  leaders: LeaderWatch | undefined,
): Promise<Injected> {
  let worker: Promise<{ text: string; orphans: Promise<OrphanTimes> } | undefined> = Promise.resolve(undefined);
  let host: string | undefined;
  if (overlap) {
    host = await pickVictim(cluster, random);
    const h = host;
    if (h && overlap === 'kill') {
      const k = killWorker(cluster, h, 30_000);
      worker = k.then((t) => {
        seen.kills.push(t);
        counts.kill++;
        return { text: `kill -9 ${h} (${t.ops} ops)`, orphans: Promise.resolve({ ...(t.detectedAt === undefined ? {} : { detectedAt: t.detectedAt }), ...(t.takenOverAt === undefined ? {} : { takenOverAt: t.takenOverAt }) }) };
      });
      for (let i = 0; i < 50 && cluster.worker(h); i++) await sleep(100);
    } else if (h) {
      worker = zombie(cluster, h, 2 * ttl + 3_000).then((z) => {
        if (!z) return undefined;
        seen.freezes.push(z.freeze);
        counts.zombie++;
        return { text: `SIGSTOP ${h} (${z.fenced ? 'killed by its fence' : 'NOT fenced'})`, orphans: z.orphans };
      });
    }
    await sleep(300);
  }
  const inj = await injectHa(cluster, fault, random, ttl, n);
  const w = await worker;
  const elected = leaders?.elections.find((e) => e.at > inj.startedAt && e.at <= inj.wholeAt)?.at;
  const recoveredAt = fault.startsWith('etcd-') ? Math.max(inj.endedAt, elected ?? 0) : inj.endedAt;
  const election = elected === undefined ? '' : `; new etcd leader ${elected - inj.startedAt} ms in`;
  return {
    detail: `${inj.target}: ${inj.detail}${election}; servers whole ${inj.wholeAt - inj.endedAt} ms after${w ? `; over it: ${w.text}` : ''}`,
    mark: { kind: fault, target: w ? `${inj.target} + ${w.text.replace(/ \(.*$/, '')}` : inj.target, startedAt: inj.startedAt, endedAt: inj.endedAt },
    ...(w ? { orphans: w.orphans, overlap: w.text } : {}),
    ...(host && w ? { victim: host } : {}),
    recoveredAt,
  };
}
