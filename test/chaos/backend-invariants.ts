/**
 * The backend-down fault's invariant (pure): a worker whose storage backend fails its health
 * check takes no new job while it is down — it keeps its membership, the others take the jobs —
 * and it resumes by itself. Read from etcd's history: each member's alive entry carries its
 * backend report, so a down window is from the report that says `down` to the one that says
 * `up` again (or the key's deletion); the claims are the op writes that name a new owner.
 */
import type { HistoryEvent } from './history.js';
import { few, type InvariantRow, row } from './rows.js';

/** One backend-down fault as the suite saw it through the API (epoch ms). */
export interface BackendOutage {
  readonly host: string;
  /** When the fake driver's down file was written. */
  readonly from: number;
  /** When it was removed. */
  readonly to: number;
  /** When `os-services` (3.49) first showed the host's `backend_state: down`; absent: never. */
  readonly seenDownAt?: number;
  /** When it first showed `up` again after the file was removed; absent: never. */
  readonly seenUpAt?: number;
}

/** An incarnation's backend down window, in revisions: [first down report, next report that is not down). */
export interface DownWindow {
  readonly incarnation: string;
  readonly host: string;
  readonly from: number;
  readonly to: number;
  /** The revision of the second down report: claims after it cannot be a job already being claimed when the check failed. */
  readonly settledFrom: number;
}

/** Every down window of every incarnation in `history`. */
export function downWindows(history: readonly HistoryEvent[]): DownWindow[] {
  const open = new Map<string, { incarnation: string; from: number; reports: number; settledFrom: number }>();
  const out: DownWindow[] = [];
  const close = (host: string, revision: number): void => {
    const w = open.get(host);
    if (!w) return;
    out.push({ incarnation: w.incarnation, host, from: w.from, to: revision, settledFrom: w.settledFrom });
    open.delete(host);
  };
  for (const e of history) {
    if (e.kind === 'alive-delete') close(e.host, e.revision);
    if (e.kind !== 'alive-put') continue;
    const w = open.get(e.host);
    if (w && w.incarnation !== e.incarnation) close(e.host, e.revision);
    if (e.backend === 'down') {
      const cur = open.get(e.host);
      if (!cur) open.set(e.host, { incarnation: e.incarnation, from: e.revision, reports: 1, settledFrom: Number.POSITIVE_INFINITY });
      else if (++cur.reports === 2) cur.settledFrom = e.revision;
    } else close(e.host, e.revision);
  }
  for (const host of [...open.keys()]) close(host, Number.POSITIVE_INFINITY);
  return out;
}

/**
 * The row: every injected outage was seen (`backend_state: down` in os-services, and a down
 * window in etcd), the worker resumed by itself (seen `up` again), and no claim by the worker
 * fell inside its window after the window had settled (a job whose claim was under way when
 * the check failed may still land just after the first down report; a second report is a full
 * heartbeat later). Claims by the other members meanwhile are counted: the jobs moved.
 */
export function backendDownRow(history: readonly HistoryEvent[], outages: readonly BackendOutage[]): InvariantRow {
  const name = 'a worker whose backend was down took no new job, and came back by itself';
  if (outages.length === 0) return row(name, true, 'no backend-down fault in this run');
  const windows = downWindows(history);
  const problems: string[] = [];
  let others = 0;
  for (const o of outages) {
    if (o.seenDownAt === undefined) problems.push(`${o.host}: os-services never showed backend_state down`);
    if (o.seenUpAt === undefined) problems.push(`${o.host}: os-services never showed it up again after the down file went`);
  }
  const hostsDown = new Set(outages.map((o) => o.host));
  const mine = windows.filter((w) => hostsDown.has(w.host.replace(/@.*$/, '')));
  if (mine.length < outages.length) problems.push(`${outages.length} outages injected, ${mine.length} down windows in etcd's history`);
  for (const e of history) {
    if (e.kind !== 'op-put' || !e.owner || e.owner.incarnation === e.prevOwner?.incarnation) continue;
    const claimant = e.owner.incarnation;
    for (const w of mine) {
      if (e.revision < w.settledFrom || e.revision >= w.to) continue;
      if (w.incarnation === claimant) problems.push(`${e.key}@${e.revision} claimed by ${claimant} while its backend was down [${w.from}, ${w.to})`);
      else others++;
    }
  }
  return row(
    name,
    problems.length === 0,
    problems.length ? few(problems) : `${outages.length} outage(s), each shown down in os-services and up again; ${mine.length} down window(s) in etcd, no claim by the worker inside; ${others} claim(s) by the other members meanwhile`,
  );
}
