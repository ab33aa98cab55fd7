/**
 * The fault suite's fencing invariants (pure: no I/O), proven from etcd's history of the run and
 * the workers' logs:
 *
 * - {@link fenceOrderRow}: a dead incarnation's work and locks moved only after its fence — the
 *   revision that created `fenced/<inc>` precedes every takeover claim of its ops and every
 *   hand-off mark of a lock it held (zero overlaps alone could be luck);
 * - {@link fencedOnceRow}: each death was fenced once — one end record, one log line;
 * - {@link refusedFenceRow}: a fence that was refused kept the victim's work untouched until the
 *   operator confirmed it.
 *
 * Revisions are etcd's own total order, so none of this depends on clocks.
 */
import type { HistoryEvent } from './history.js';
import { few, type InvariantRow, row } from './rows.js';

/** The `how` of a fence made by another member without anyone's help. */
export const AUTOMATIC_HOWS: readonly string[] = ['exec', 'process-gone', 'lock-delay', 'kubernetes'];

/** One `fenced a dead incarnation` log line of a worker. */
export interface FenceLog {
  readonly incarnation: string;
  readonly how: string;
}

/** A process of the run as the fence rows need it. */
export interface FencingProcess {
  readonly name: string;
  readonly pid?: number;
  readonly by: 'kill' | 'stop' | 'none';
  readonly code: number | null;
  readonly signal: string | null;
  /** When it exited (epoch ms). */
  readonly endedAt?: number;
  /** Its `fenced a dead incarnation` log lines. */
  readonly fenced?: readonly FenceLog[];
}

/** The faults of a run that end an incarnation without a clean leave, as injected. */
export interface DeathFaults {
  readonly kills: number;
  readonly zombies: number;
  readonly refusedFences: number;
}

/** One refused-fence fault: what the suite saw before it confirmed the fence by hand. */
export interface RefusedFence {
  readonly host: string;
  readonly incarnation: string;
  /** Its ops when it was frozen (`ops/<type>/<id>`). */
  readonly owned: readonly string[];
  /** Claims of its fence operation `GET /hearth/v1/fences` showed with a refusal as the last error (0: the refusal was never seen there). */
  readonly refusedAttempts: number;
  /** How many of `owned` were still its own just before the confirmation. */
  readonly stillOwned: number;
  /** HTTP status of `POST /hearth/v1/fences/{inc}/confirm`. */
  readonly confirmStatus: number;
}

/** An incarnation's life in etcd: its alive key from `from` up to (not including) `to`. */
export interface Life {
  readonly host: string;
  readonly from: number;
  to: number;
}

/** `fenced/<inc>` as first written. */
export interface End {
  readonly revision: number;
  readonly how: string;
  readonly by: string;
  readonly atMs: number;
  readonly host: string;
}

/** Lives, end records and the pid each incarnation's process had, from the history. */
export interface Incarnations {
  readonly lives: ReadonlyMap<string, Life>;
  readonly ends: ReadonlyMap<string, End>;
  readonly pids: ReadonlyMap<string, number>;
  /** When a member first saw each death (`fences/<inc>`'s diedAtMs, epoch ms). */
  readonly diedAtMs: ReadonlyMap<string, number>;
}

/** Reads lives, ends and pids out of `history`. A host's new alive key ends its previous incarnation too. */
export function incarnations(history: readonly HistoryEvent[]): Incarnations {
  const lives = new Map<string, Life>();
  const current = new Map<string, string>();
  const ends = new Map<string, End>();
  const pids = new Map<string, number>();
  const diedAtMs = new Map<string, number>();
  const endLife = (host: string, revision: number): void => {
    const life = lives.get(current.get(host) ?? '');
    if (life && life.to === Number.POSITIVE_INFINITY) life.to = revision;
    current.delete(host);
  };
  for (const e of history) {
    if (e.kind === 'alive-put' && !lives.has(e.incarnation)) {
      if (current.has(e.host)) endLife(e.host, e.revision);
      lives.set(e.incarnation, { host: e.host, from: e.createRevision, to: Number.POSITIVE_INFINITY });
      current.set(e.host, e.incarnation);
    } else if (e.kind === 'alive-delete') endLife(e.host, e.revision);
    else if (e.kind === 'end-put' && !ends.has(e.incarnation)) ends.set(e.incarnation, { revision: e.revision, how: e.how, by: e.by, atMs: e.atMs, host: e.host });
    else if (e.kind === 'incarnation-put' && e.pid !== null) pids.set(e.incarnation, e.pid);
    else if (e.kind === 'fence-op-put' && !diedAtMs.has(e.incarnation)) diedAtMs.set(e.incarnation, e.diedAtMs);
  }
  return { lives, ends, pids, diedAtMs };
}

/** True when `inc` ended without a clean leave: its alive key went, and no `left` end was written with it. */
export function diedUnclean(inc: Incarnations, incarnation: string): boolean {
  const life = inc.lives.get(incarnation);
  if (!life || life.to === Number.POSITIVE_INFINITY) return false;
  const end = inc.ends.get(incarnation);
  return !(end?.how === 'left' && end.revision === life.to);
}

/** Work or a lock that moved from an ended incarnation to another. */
export interface Move {
  readonly what: string;
  readonly revision: number;
  readonly from: string;
}

/** What {@link proveFenceOrder} found. */
export interface FenceOrder {
  /** Incarnations that ended without a clean leave. */
  readonly deaths: readonly string[];
  readonly takeovers: readonly Move[];
  readonly marks: readonly Move[];
  /** Waiters next in line after a dead owner that let go without a mark: their own incarnation ended meanwhile, or they gave up. */
  readonly letGo: { readonly theirEnd: number; readonly gaveUp: number };
  readonly problems: readonly string[];
}

type LockKey = { readonly key: string; readonly createRevision: number; readonly holder: string | null; ownerSince?: number; pending?: string; marked: boolean };

/** `<id>-delete_volume` → `volume/<id>`, `<id>-delete_snapshot` → `snapshot/<id>` (worker/plan.ts's lock names). */
function resourceOfLock(lock: string): string | undefined {
  const m = /^(.+)-delete_(volume|snapshot)$/.exec(lock);
  return m ? `${m[2]}/${m[1]}` : undefined;
}

const resourceOfOp = (key: string): string => key.replace(/^ops\//, '');

/**
 * Checks, over the whole history, that every takeover claim of an op (its owner changes from X
 * to another incarnation) and every hand-off mark of a lock whose previous owner's key went with
 * its incarnation's end came after X's end record was created — and that such a record exists
 * at all. A waiter that became owner after a dead owner and let its key go unmarked must not
 * have written a final status of the lock's resource meanwhile (that would be work under a lock
 * taken without the gate).
 */
export function proveFenceOrder(history: readonly HistoryEvent[]): FenceOrder {
  const inc = incarnations(history);
  const problems: string[] = [];
  const takeovers: Move[] = [];
  const marks: Move[] = [];
  const before = (from: string, revision: number, what: string): boolean => {
    const end = inc.ends.get(from);
    if (!end) problems.push(`${what} at revision ${revision} from ${from}, which has no end on record at all`);
    else if (end.revision >= revision) problems.push(`${what} at revision ${revision} from ${from}, before its end (${end.how}) at ${end.revision}`);
    return end !== undefined && end.revision < revision;
  };
  const locks = new Map<string, Map<string, LockKey>>();
  const ownerOf = (keys: ReadonlyMap<string, LockKey>): LockKey | undefined => [...keys.values()].reduce<LockKey | undefined>((a, k) => (a === undefined || k.createRevision < a.createRevision ? k : a), undefined);
  const unmarked: { lock: string; holder: string | null; from: string; since: number; until: number }[] = [];
  for (const e of history) {
    if (e.kind === 'op-put' && e.owner && e.prevOwner && e.owner.incarnation !== e.prevOwner.incarnation) {
      const what = `takeover of ${e.key} by ${e.owner.incarnation}`;
      if (before(e.prevOwner.incarnation, e.revision, what)) takeovers.push({ what, revision: e.revision, from: e.prevOwner.incarnation });
    } else if (e.kind === 'lock-put') {
      const keys = locks.get(e.lock) ?? new Map<string, LockKey>();
      locks.set(e.lock, keys);
      const known = keys.get(e.key);
      if (!known || e.version === 1) {
        keys.set(e.key, { key: e.key, createRevision: e.createRevision, holder: e.holder, marked: false, ...(keys.size === 0 ? { ownerSince: e.revision } : {}) });
        continue;
      }
      if (known.marked) continue;
      known.marked = true;
      if (known.pending !== undefined) {
        const what = `hand-off mark of lock ${e.lock} by ${known.holder ?? '?'}`;
        if (before(known.pending, e.revision, what)) marks.push({ what, revision: e.revision, from: known.pending });
      }
    } else if (e.kind === 'lock-delete') {
      const keys = locks.get(e.lock);
      const gone = keys?.get(e.key);
      if (!keys || !gone) continue;
      const wasOwner = ownerOf(keys) === gone;
      keys.delete(e.key);
      if (gone.pending !== undefined && !gone.marked) unmarked.push({ lock: e.lock, holder: gone.holder, from: gone.pending, since: gone.ownerSince ?? e.revision, until: e.revision });
      if (!wasOwner) continue;
      const next = ownerOf(keys);
      if (!next) continue;
      next.ownerSince = e.revision;
      // The owner's key went with its incarnation's end (its alive key was gone by then): the next in line takes over from it.
      const life = gone.holder === null ? undefined : inc.lives.get(gone.holder);
      if (gone.holder !== null && life && life.to <= e.revision) next.pending = gone.holder;
    }
  }
  let theirEnd = 0;
  let gaveUp = 0;
  for (const u of unmarked) {
    const life = u.holder === null ? undefined : inc.lives.get(u.holder);
    const end = u.holder === null ? undefined : inc.ends.get(u.holder);
    if ((life && life.to <= u.until) || (end && end.revision <= u.until)) {
      theirEnd++;
      continue;
    }
    const resource = resourceOfLock(u.lock);
    const worked = history.find((e): e is Extract<HistoryEvent, { kind: 'op-delete' | 'op-put' }> => e.kind === 'op-delete' && e.prevOwner?.incarnation === u.holder && resourceOfOp(e.key) === resource && e.revision > u.since && e.revision < u.until);
    if (worked) problems.push(`${u.holder ?? '?'} held lock ${u.lock} after ${u.from} died and wrote ${worked.key} at revision ${worked.revision} without a hand-off mark`);
    else gaveUp++;
  }
  const deaths = [...inc.lives.keys()].filter((i) => diedUnclean(inc, i));
  return { deaths, takeovers, marks, letGo: { theirEnd, gaveUp }, problems };
}

const tally = (items: readonly string[]): string =>
  Object.entries(items.reduce<Record<string, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {}))
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

/**
 * The row "work and locks moved only after the fence". FAILs on any move before (or without)
 * the end record, and — loudly — when the run injected faults that kill but etcd's history
 * shows no death, or no move of a dead incarnation's work to check.
 */
export function fenceOrderRow(history: readonly HistoryEvent[], faults: DeathFaults): InvariantRow {
  const name = "a dead incarnation's work and locks moved only after its fence (etcd history)";
  const inc = incarnations(history);
  const p = proveFenceOrder(history);
  const dead = new Set(p.deaths);
  const fromDead = (m: Move): boolean => dead.has(m.from);
  const takeovers = p.takeovers.filter(fromDead).length;
  const marks = p.marks.filter(fromDead).length;
  const expected = faults.kills + faults.zombies + faults.refusedFences > 0;
  const hows = p.deaths.map((d) => inc.ends.get(d)?.how ?? 'none yet');
  if (p.problems.length > 0) return row(name, false, few(p.problems));
  if (expected && (p.deaths.length === 0 || takeovers === 0)) {
    return row(name, false, `nothing to check: the run killed or froze workers, but etcd's history shows ${p.deaths.length} deaths and ${takeovers} takeovers of their ops`);
  }
  return row(
    name,
    true,
    `${p.deaths.length} incarnations ended without a clean leave (ended by: ${tally(hows) || 'none'}); ${takeovers} takeovers of their ops and ${marks} hand-off marks of their locks, each after the end record's revision ` +
      `(${p.takeovers.length - takeovers} takeovers and ${p.marks.length - marks} marks after a clean leave); next in line after a dead owner and let go unmarked: ${p.letGo.theirEnd} as their own incarnation ended, ${p.letGo.gaveUp} gave up`,
  );
}

/** How long after recording a fence a worker surely has logged it (the line follows the write at once). */
export const LOG_AFTER_FENCE_MS = 1_000;

/**
 * The row "each death fenced once": the log line `fenced a dead incarnation` appears at most once
 * per incarnation over every worker's log, always matches the end record (same how, written by
 * the logging process's incarnation), and every automatic end record (exec, process-gone,
 * lock-delay, kubernetes) made by a worker that lived on — it stopped cleanly, or died at least
 * {@link LOG_AFTER_FENCE_MS} after the record (the record's time and the exit's are one
 * machine's clock) — is logged exactly once by it. A record made by a worker killed within that
 * second may have lost its line with the kill: counted, not required.
 */
export function fencedOnceRow(history: readonly HistoryEvent[], processes: readonly FencingProcess[], faults: DeathFaults): InvariantRow {
  const name = 'each death fenced once (end records and the workers’ logs)';
  const inc = incarnations(history);
  const problems: string[] = [];
  const logs = processes.flatMap((p) => (p.fenced ?? []).map((l) => ({ ...l, pid: p.pid, process: p.name })));
  const counts = new Map<string, number>();
  for (const l of logs) counts.set(l.incarnation, (counts.get(l.incarnation) ?? 0) + 1);
  for (const [i, n] of counts) if (n > 1) problems.push(`${i} logged as fenced ${n} times`);
  for (const l of logs) {
    const end = inc.ends.get(l.incarnation);
    if (!end || end.how !== l.how) problems.push(`${l.process} logged ${l.incarnation} fenced (${l.how}); etcd's end record: ${end ? end.how : 'none'}`);
    else if (inc.pids.get(end.by) !== l.pid) problems.push(`${l.process} logged ${l.incarnation} fenced, but its end record names ${end.by} (pid ${inc.pids.get(end.by) ?? '?'})`);
  }
  const automatic = [...inc.ends.entries()].filter(([, e]) => AUTOMATIC_HOWS.includes(e.how));
  let provable = 0;
  let unprovable = 0;
  for (const [i, end] of automatic) {
    const fencer = processes.find((p) => p.pid !== undefined && p.pid === inc.pids.get(end.by));
    const livedOn = fencer !== undefined && ((fencer.by === 'stop' && fencer.code === 0) || (fencer.endedAt !== undefined && fencer.endedAt >= end.atMs + LOG_AFTER_FENCE_MS));
    if (fencer && livedOn) {
      provable++;
      const n = (fencer.fenced ?? []).filter((l) => l.incarnation === i).length;
      if (n !== 1) problems.push(`${i} fenced (${end.how}) by ${fencer.name}, which lived on, but logged ${n} times there`);
    } else unprovable++;
  }
  if (problems.length > 0) return row(name, false, few(problems));
  if (faults.kills > 0 && automatic.length === 0) return row(name, false, 'nothing to check: workers were killed, but no automatic end record (exec, process-gone, lock-delay) is in etcd');
  return row(
    name,
    true,
    `${automatic.length} automatic end records (${tally(automatic.map(([, e]) => e.how)) || 'none'}), one per incarnation; ${provable} by workers that lived on (stopped cleanly, or ≥ ${LOG_AFTER_FENCE_MS / 1000} s), each logged exactly once by that worker; ` +
      `${unprovable} by workers killed within ${LOG_AFTER_FENCE_MS / 1000} s or unknown (log may be cut; ${automatic.filter(([i]) => counts.has(i)).length - provable} of them logged); ${logs.length} log lines, none twice`,
  );
}

/**
 * The row "a refused fence kept the work": for each refused-fence fault, the fence was refused
 * (recorded on the fence operation in etcd, and seen in the API) while the victim's ops stayed
 * its own, its end is the operator's (`manual`), and its ops were taken over — after that record.
 */
export function refusedFenceRow(history: readonly HistoryEvent[], refusals: readonly RefusedFence[], faults: DeathFaults): InvariantRow {
  const name = 'a refused fence kept the work until the operator confirmed it';
  if (faults.refusedFences === 0) return row(name, true, 'no refused fence scheduled');
  const inc = incarnations(history);
  const order = proveFenceOrder(history);
  const problems: string[] = [];
  let taken = 0;
  let refused = 0;
  for (const r of refusals) {
    const end = inc.ends.get(r.incarnation);
    const inEtcd = history.filter((e) => e.kind === 'fence-op-put' && e.incarnation === r.incarnation && (e.lastError ?? '').includes('refused')).length;
    refused += inEtcd;
    const moves = order.takeovers.filter((m) => m.from === r.incarnation);
    taken += moves.length;
    if (r.confirmStatus !== 200) problems.push(`${r.host}: the confirmation answered ${r.confirmStatus}`);
    if (!end || end.how !== 'manual' || end.by !== 'operator') problems.push(`${r.host} (${r.incarnation}) ended ${end ? `${end.how} by ${end.by}` : 'without a record'}, not by the operator`);
    if (inEtcd === 0 || r.refusedAttempts === 0) problems.push(`${r.host}: no refused attempt recorded (etcd ${inEtcd}, API view ${r.refusedAttempts > 0 ? 'showed it' : 'never showed it'})`);
    if (r.stillOwned !== r.owned.length) problems.push(`${r.host}: ${r.owned.length - r.stillOwned} of its ${r.owned.length} ops changed hands before the confirmation`);
    if (r.owned.length > 0 && moves.length === 0) problems.push(`${r.host}: its ops were never taken over after the confirmation`);
  }
  if (refusals.length < faults.refusedFences) problems.push(`${faults.refusedFences} refused fences scheduled, ${refusals.length} happened (no running victim?)`);
  return row(
    name,
    problems.length === 0,
    problems.length > 0
      ? few(problems)
      : `${refusals.length} victims frozen with ${refusals.reduce((n, r) => n + r.owned.length, 0)} ops: ${refused} refused attempts on record, every op still theirs at the confirmation, each ended by the operator (manual), ${taken} takeovers after it`,
  );
}

/** Pids of processes an exec fence killed: their incarnation's end is `exec` (the suite's fence command kills). */
export function fenceKilledPids(history: readonly HistoryEvent[]): ReadonlySet<number> {
  const inc = incarnations(history);
  return new Set([...inc.ends.entries()].flatMap(([i, e]) => (e.how === 'exec' && inc.pids.has(i) ? [inc.pids.get(i) as number] : [])));
}

/** One fence, for the report and the timeline. */
export interface FenceEvent {
  readonly incarnation: string;
  readonly host: string;
  readonly how: string;
  readonly by: string;
  /** When the end was recorded (epoch ms, the recorder's clock). */
  readonly atMs: number;
  /** The revision that created `fenced/<inc>`. */
  readonly revision: number;
  /** When a member first saw the death (epoch ms), if a fence operation was asked for. */
  readonly diedAtMs?: number;
}

/** Every end record of an incarnation that died without a clean leave, in revision order. */
export function fenceEvents(history: readonly HistoryEvent[]): FenceEvent[] {
  const inc = incarnations(history);
  return [...inc.ends.entries()]
    .filter(([i]) => diedUnclean(inc, i))
    .map(([incarnation, e]) => ({ incarnation, host: e.host, how: e.how, by: e.by, atMs: e.atMs, revision: e.revision, ...(inc.diedAtMs.has(incarnation) ? { diedAtMs: inc.diedAtMs.get(incarnation) as number } : {}) }))
    .sort((a, b) => a.revision - b.revision);
}

/**
 * The fences as a report, one line each: when (seconds since `startedAt`), whom, how, by whom,
 * at which revision, and how long after a member first saw the death.
 */
export function formatFences(fences: readonly FenceEvent[], startedAt: number): string {
  const lines = fences.map((f) => {
    const since = f.diedAtMs === undefined ? '' : `, ${f.atMs - f.diedAtMs} ms after the death was seen`;
    return `  ${((f.atMs - startedAt) / 1000).toFixed(1).padStart(6)} s  ${f.incarnation}  ${f.how} by ${f.by} at revision ${f.revision}${since}`;
  });
  return `${fences.length} incarnations ended without a clean leave; their ends on record (fenced/<inc>):\n${lines.join('\n')}`;
}
