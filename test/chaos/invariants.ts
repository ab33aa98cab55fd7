/**
 * The fault suite's invariants (pure: no I/O). The scenario runner records what happened —
 * requests and their outcomes, etcd's history of the run, the fake driver's journal report,
 * process exits, fault timings — and {@link checkInvariants} turns that record into one row per
 * invariant. Nothing here knows how the record was made, so each rule is unit-tested on
 * hand-written records (`test/unit/chaos/invariants.test.ts`).
 */
import type { JournalReport } from '../../src/drivers/fake-journal.js';
import { isTransitional } from '../../src/state/state-machine.js';
import { type BackendOutage, backendDownRow } from './backend-invariants.js';
import { type DeathFaults, type FenceLog, fenceKilledPids, fenceOrderRow, fencedOnceRow, type RefusedFence, refusedFenceRow } from './fence-invariants.js';
import type { HistoryEvent } from './history.js';
import { few, type InvariantRow, row } from './rows.js';

export type { HistoryEvent, InvariantRow };

/** The operations the stream asks for through the API (`force_delete_*`: Cinder's `os-force_delete`). */
export type RequestKind =
  | 'create_volume'
  | 'delete_volume'
  | 'extend_volume'
  | 'create_snapshot'
  | 'delete_snapshot'
  | 'force_delete_volume'
  | 'force_delete_snapshot'
  | 'clone_volume'
  | 'create_volume_from_snapshot'
  | 'attach_volume'
  | 'detach_volume';

/** One request of the stream that the API accepted (202). */
export interface AcceptedRequest {
  readonly kind: RequestKind;
  readonly type: 'volume' | 'snapshot';
  readonly id: string;
  /** The final status seen while the stream waited for it (`deleted` once gone); absent when the wait gave up. */
  readonly final?: string;
  /** When the stream saw that final status (epoch ms): the request's completion, for the timeline. */
  readonly completedAt?: number;
  /** True when no later request of the stream touched the resource (its end state is this request's). */
  readonly last: boolean;
  /**
   * True when a force-delete was accepted while this request may still have been running: its
   * op was replaced, so it may never reach a final status of its own (the force-delete must).
   */
  readonly superseded?: boolean;
}

/** The statuses each request may end in (a cleaned-up orphan ends in its cleanup status, which is one of these). */
export const FINAL_STATUSES: Readonly<Record<RequestKind, readonly string[]>> = {
  create_volume: ['available', 'error'],
  delete_volume: ['deleted', 'error_deleting'],
  extend_volume: ['available', 'error_extending'],
  create_snapshot: ['available', 'error'],
  delete_snapshot: ['deleted', 'error_deleting'],
  force_delete_volume: ['deleted', 'error_deleting'],
  force_delete_snapshot: ['deleted', 'error_deleting'],
  clone_volume: ['available', 'error'],
  create_volume_from_snapshot: ['available', 'error'],
  // Attachment requests answer once their worker finished (200): the volume as it rests then.
  attach_volume: ['reserved', 'in-use', 'available'],
  detach_volume: ['available', 'reserved', 'in-use'],
};

/** A write whose writer was not alive (holding its alive key) at the write's revision. */
export interface FencedWrite {
  readonly revision: number;
  readonly key: string;
  readonly writer: string;
  readonly why: string;
}

/**
 * Writes in `history` made by an incarnation that was not alive at their revision. The writer of
 * a write is known from the write itself: a claim names its new owner; a hand-back (owner →
 * null) and the end of an op (its deletion) are written by its owner, as the claim's and the
 * final write's conditions require (`expectOp owner: me`); a final resource write names its
 * writer in `updated_by`, and must agree with the owner of the op it ends in the same
 * revision. An incarnation is alive from its alive key's creation up to (not including) the
 * revision that deletes that key; its owner refs must also carry that create revision. A put
 * that replaces an op by another (a new op id) is an admin's force-delete through the API, not
 * a worker's write: it is pinned to the old op id, whoever owned it, and checked by nobody's life.
 */
export function findFencedWrites(history: readonly HistoryEvent[]): FencedWrite[] {
  const lives = new Map<string, { from: number; to: number }>();
  const current = new Map<string, string>();
  for (const e of history) {
    if (e.kind === 'alive-put' && !lives.has(e.incarnation)) {
      lives.set(e.incarnation, { from: e.createRevision, to: Number.POSITIVE_INFINITY });
      current.set(e.host, e.incarnation);
    } else if (e.kind === 'alive-delete') {
      const inc = current.get(e.host);
      const life = inc === undefined ? undefined : lives.get(inc);
      if (life && life.to === Number.POSITIVE_INFINITY) life.to = e.revision;
      current.delete(e.host);
    }
  }
  const bad: FencedWrite[] = [];
  const check = (revision: number, key: string, writer: string, aliveRevision: number | undefined, what: string): void => {
    const life = lives.get(writer);
    if (!life) bad.push({ revision, key, writer, why: `${what} by an incarnation that never held an alive key` });
    else if (revision < life.from || revision >= life.to) bad.push({ revision, key, writer, why: `${what} at revision ${revision}, outside its life [${life.from}, ${life.to})` });
    else if (aliveRevision !== undefined && aliveRevision !== life.from) bad.push({ revision, key, writer, why: `${what} with alive revision ${aliveRevision}, its key's is ${life.from}` });
  };
  const endedBy = new Map<string, string>();
  for (const e of history) {
    if (e.kind === 'op-put') {
      if (e.prevOpId && e.opId && e.opId !== e.prevOpId) continue;
      if (e.owner && e.owner.incarnation !== e.prevOwner?.incarnation) check(e.revision, e.key, e.owner.incarnation, e.owner.aliveRevision, 'claim');
      else if (e.owner === null && e.prevOwner) check(e.revision, e.key, e.prevOwner.incarnation, e.prevOwner.aliveRevision, 'hand-back');
      else if (e.owner) check(e.revision, e.key, e.owner.incarnation, e.owner.aliveRevision, 'op update');
    } else if (e.kind === 'op-delete' && e.prevOwner) {
      check(e.revision, e.key, e.prevOwner.incarnation, e.prevOwner.aliveRevision, 'final write');
      endedBy.set(`${e.revision} ${resourceOf(e.key)}`, e.prevOwner.incarnation);
    }
  }
  for (const e of history) {
    if (e.kind !== 'resource-put') continue;
    const ender = endedBy.get(`${e.revision} ${resourceOf(e.key)}`);
    if (ender === undefined) continue;
    if (e.updatedBy !== ender) bad.push({ revision: e.revision, key: e.key, writer: e.updatedBy ?? 'nobody', why: `final status ${e.status} names ${e.updatedBy ?? 'no writer'}, the op's owner was ${ender}` });
  }
  return bad;
}

/** `ops/volume/x` and `resources/volume/x` → `volume/x`. */
function resourceOf(key: string): string {
  const m = /(?:^|\/)(?:ops|resources)\/(volume|snapshot)\/([^/]+)$/.exec(key);
  return m ? `${m[1]}/${m[2]}` : key;
}

/** One kill -9 and when its consequences were seen (epoch ms). */
export interface KillTiming {
  readonly host: string;
  readonly killedAt: number;
  /** Ops the victim owned when it was killed. */
  readonly ops: number;
  /** First time the API's orphan view showed one of them. */
  readonly detectedAt?: number;
  /** When none of them was still owned by the dead incarnation. */
  readonly takenOverAt?: number;
  /** When the host's new process had started (it answered its start-up check). */
  readonly restartedAt?: number;
  /**
   * An etcd leader election between the kill and the detection (the latest): a new leader
   * extends every lease, so the detection bound counts from it.
   */
  readonly electedAt?: number;
}

/** A process the suite froze (SIGSTOP) from `from` to `to` (SIGCONT), epoch ms. */
export interface Freeze {
  readonly pid: number;
  readonly from: number;
  readonly to: number;
}

/** How a process of the run ended. */
export interface ProcessEnd {
  readonly name: string;
  readonly pid?: number;
  /** When it exited (epoch ms; the suite's clock, the workers' too: one machine). */
  readonly endedAt?: number;
  /** What the runner did to it last: killed it, stopped it (SIGTERM) at the end, or nothing. */
  readonly by: 'kill' | 'stop' | 'none';
  readonly code: number | null;
  readonly signal: string | null;
  /** Output lines that are not JSON log lines (a stack trace, a runtime warning), first few. */
  readonly stray?: readonly string[];
  /** Its `fenced a dead incarnation` log lines. */
  readonly fenced?: readonly FenceLog[];
}

/** A malformed or oversized input and what hearth answered. */
export interface BadInput {
  readonly what: string;
  /** HTTP status (API) or whether the message was found dead-lettered (AMQP). */
  readonly outcome: number | 'dead-lettered' | 'missing';
  /** The API answered with Cinder's fault body (`{"<fault>": {"code", "message"}}`). */
  readonly faultBody?: boolean;
  /** AMQP: a record or a driver call exists for the resource the message named. */
  readonly touched?: boolean;
}

/** Everything a run recorded. */
export interface RunRecord {
  readonly leaseTtlMs: number;
  readonly accepted: readonly AcceptedRequest[];
  /** Status of every resource the stream made, after the settle (`deleted` once gone). */
  readonly endStatus: ReadonlyMap<string, string>;
  /** Resources the API lists after the settle, by `type/id`, with their status. */
  readonly listed: readonly { readonly type: 'volume' | 'snapshot'; readonly id: string; readonly status: string; readonly name?: string | null }[];
  readonly journal: JournalReport;
  readonly history: readonly HistoryEvent[];
  readonly opsLeft: readonly string[];
  readonly processes: readonly ProcessEnd[];
  readonly kills: readonly KillTiming[];
  /** The SIGSTOP … SIGCONT windows of the zombie fault (epoch ms), by process id. */
  readonly freezes: readonly Freeze[];
  /** The faults injected that end an incarnation without a clean leave (the fence rows need deaths to check). */
  readonly deathFaults: DeathFaults;
  /** What each refused-fence fault saw. */
  readonly refusals: readonly RefusedFence[];
  readonly badInputs: readonly BadInput[];
  /** Name prefix of the volumes that bad requests tried to create. */
  readonly badName: string;
  /** The backend-down faults (absent: none injected). */
  readonly outages?: readonly BackendOutage[];
}

/** p50 and max of `values` (ms), or undefined when empty. */
export function p50max(values: readonly number[]): { p50: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, max: sorted[sorted.length - 1] ?? 0 };
}

/** One row per invariant. */
export function checkInvariants(r: RunRecord): InvariantRow[] {
  return [
    noneLost(r),
    noneStuck(r),
    overlapRow(r.journal),
    sourceRow(r.journal),
    noFencedWrite(r),
    fenceOrderRow(r.history, r.deathFaults),
    fencedOnceRow(r.history, r.processes, r.deathFaults),
    refusedFenceRow(r.history, r.refusals, r.deathFaults),
    backendDownRow(r.history, r.outages ?? []),
    noDoubleCreate(r),
    attachedNotDeleted(r),
    opsEmpty(r),
    noCrash(r),
    badApi(r),
    badAmqp(r),
    ...killRows(r),
  ];
}

function noneLost(r: RunRecord): InvariantRow {
  const lost: string[] = [];
  let late = 0;
  let superseded = 0;
  for (const a of r.accepted) {
    if (a.superseded === true) {
      superseded++;
      continue;
    }
    const allowed = FINAL_STATUSES[a.kind];
    if (a.final !== undefined && allowed.includes(a.final)) continue;
    const end = r.endStatus.get(`${a.type}/${a.id}`);
    if (a.final === undefined && a.last && end !== undefined && allowed.includes(end)) {
      late++;
      continue;
    }
    lost.push(`${a.kind} ${a.id}: ${a.final ?? `not final in the stream, ${end ?? 'unknown'} at the end`}`);
  }
  const errors = r.accepted.filter((a) => (a.final ?? r.endStatus.get(`${a.type}/${a.id}`) ?? '').startsWith('error')).length;
  return row('every accepted request reached a final status (none lost)', lost.length === 0, lost.length ? few(lost) : `${r.accepted.length} accepted, all final (${late} only after the settle; ${errors} ended in an error status; ${superseded} replaced by a force-delete)`);
}

function noneStuck(r: RunRecord): InvariantRow {
  const stuck = r.listed.filter((x) => isTransitional(x.type, x.status)).map((x) => `${x.type} ${x.id} ${x.status}`);
  return row('no resource left in a transitional status', stuck.length === 0, stuck.length ? few(stuck) : `${r.listed.length} resources listed, none transitional`);
}

/**
 * No volume attached and deleted at once: no write of a volume that still has attachments puts
 * it in `deleting` (the delete and every attachment change are compare-and-swaps of the one
 * record, so one of them must have lost), and no connection was made on a volume whose delete
 * had started (the fake driver's journal).
 */
export function attachedNotDeleted(r: Pick<RunRecord, 'history' | 'journal'>): InvariantRow {
  const bad: string[] = [];
  for (const e of r.history) {
    if (e.kind === 'resource-put' && e.status === 'deleting' && (e.attachments ?? 0) > 0) bad.push(`${e.key} deleting with ${e.attachments} attachments at revision ${e.revision}`);
  }
  const deleteStart = new Map<string, number>();
  for (const c of r.journal.calls) if (c.call === 'deleteVolume') deleteStart.set(c.resource, Math.min(c.start, deleteStart.get(c.resource) ?? Infinity));
  let connections = 0;
  for (const c of r.journal.calls) {
    if (c.call !== 'initializeConnection') continue;
    connections++;
    const deleted = deleteStart.get(c.resource);
    if (deleted !== undefined && c.start >= deleted) bad.push(`${c.resource}: connected by ${c.opId} after its delete began`);
  }
  return row('no volume attached and deleted at once', bad.length === 0, bad.length ? few(bad) : `${connections} connections made, none on a volume being deleted`);
}

/**
 * Overlaps of driver calls on one resource, from the fake driver's journal: none allowed, with no
 * exception. (A worker frozen mid-call is fenced — killed — before anyone takes its work over, so
 * the call it had in flight cannot outlast the takeover; without a fence a lock-delay must do.)
 */
export function overlapRow(journal: JournalReport): InvariantRow {
  const o = journal.overlaps.map((x) => `${x.resource}: ${x.first.call}@${x.first.member} / ${x.second.call}@${x.second.member}`);
  return row(
    'no two driver calls on one resource overlapped',
    o.length === 0 && journal.malformed === 0,
    o.length ? few(o) : `${journal.calls.length} calls, ${journal.unfinished.length} cut off by kills and fences, ${journal.malformed} torn lines`,
  );
}

/**
 * Copies and their sources, from the journal: no delete of a volume or snapshot ran while a copy
 * reading it (a clone, a volume from the snapshot) ran — the copy's hold kept the delete out, and
 * a copy orphaned by a kill released its hold only once its owner was fenced.
 */
export function sourceRow(journal: JournalReport): InvariantRow {
  const bad = journal.sourceDeletions.map((x) => `${x.deletion.resource} deleted by ${x.deletion.member} under ${x.copy.call} of ${x.copy.resource}@${x.copy.member}`);
  const copies = journal.calls.filter((c) => c.source !== undefined);
  return row('no source deleted under a running copy', bad.length === 0, bad.length ? few(bad) : `${copies.length} copies (${copies.filter((c) => c.ok === true).length} succeeded), no delete of their sources meanwhile`);
}

function noFencedWrite(r: RunRecord): InvariantRow {
  const bad = findFencedWrites(r.history);
  const ends = r.history.filter((e) => e.kind === 'op-delete' && e.prevOwner).length;
  const incarnations = new Set(r.history.flatMap((e) => (e.kind === 'alive-put' ? [e.incarnation] : []))).size;
  return row('no write by a fenced worker was accepted', bad.length === 0 && ends > 0, bad.length ? few(bad.map((b) => `${b.key}@${b.revision} ${b.writer}: ${b.why}`)) : `${ends} final writes and every claim checked against ${incarnations} incarnations' alive keys in etcd's history`);
}

/**
 * Creates only: a delete re-run by cleanup after its first run's final write was lost (a
 * partition, a kill after the driver call) legitimately succeeds twice — deletes are idempotent,
 * and Cinder's cleanup deletes again too; those are counted in the detail.
 */
function noDoubleCreate(r: RunRecord): InvariantRow {
  const creates = r.journal.duplicates.filter((x) => x.call !== 'deleteVolume' && x.call !== 'deleteSnapshot');
  const d = creates.map((x) => `${x.call} ${x.resource} ×${x.calls.length} (${x.calls.map((c) => `${c.member} op ${c.opId.slice(0, 8)}`).join(', ')})`);
  const ok = r.journal.calls.filter((c) => c.call !== 'deleteVolume' && c.call !== 'deleteSnapshot' && c.call !== 'extendVolume' && c.ok === true).length;
  const reruns = r.journal.duplicates.length - creates.length;
  return row('no create succeeded twice', d.length === 0, d.length ? few(d) : `${ok} successful creates, each once; no extend twice under one op; ${reruns} deletes re-run by cleanup after a lost final write`);
}

function opsEmpty(r: RunRecord): InvariantRow {
  return row('the ops/ prefix is empty at the end', r.opsLeft.length === 0, r.opsLeft.length ? few([...r.opsLeft]) : 'no op record left');
}

/**
 * Every process ended by the suite's kill -9, by a clean stop (exit 0), or by the fence: a
 * SIGKILL nobody in the suite sent is the fence command's only if etcd records an `exec` end of
 * an incarnation that process ran.
 */
function noCrash(r: RunRecord): InvariantRow {
  const fenced = fenceKilledPids(r.history);
  const byFence = (p: ProcessEnd): boolean => p.by === 'none' && p.signal === 'SIGKILL' && p.pid !== undefined && fenced.has(p.pid);
  const crashed = r.processes.filter((p) => (p.by === 'none' && !byFence(p)) || (p.by === 'stop' && (p.code !== 0 || p.signal !== null)));
  const stray = r.processes.filter((p) => (p.stray?.length ?? 0) > 0);
  const problems = [...crashed.map((p) => `${p.name} exited ${p.code ?? p.signal ?? '?'} (${p.by})`), ...stray.map((p) => `${p.name} wrote ${JSON.stringify(p.stray?.[0])}`)];
  const kills = r.processes.filter((p) => p.by === 'kill').length;
  return row(
    'no process crashed (broker and etcd restarts included)',
    problems.length === 0,
    problems.length
      ? few(problems)
      : `${r.processes.length} process runs; every exit was a kill -9 of the suite's (${kills}), the fence's (${r.processes.filter(byFence).length}: an exec end of its incarnation in etcd) or a clean stop (0); nothing but JSON log lines on stdout/stderr`,
  );
}

function badApi(r: RunRecord): InvariantRow {
  const api = r.badInputs.filter((b) => typeof b.outcome === 'number');
  const wrong = api.filter((b) => typeof b.outcome !== 'number' || b.outcome < 400 || b.outcome >= 500 || b.faultBody !== true).map((b) => `${b.what}: ${b.outcome}`);
  const made = r.listed.filter((x) => x.name?.startsWith(r.badName)).map((x) => `${x.type} ${x.id}`);
  return row('malformed/oversized API requests: 4xx with a Cinder fault, nothing written', api.length > 0 && wrong.length === 0 && made.length === 0, wrong.length || made.length ? few([...wrong, ...made.map((m) => `created ${m}`)]) : `${api.length} bad requests, all 4xx (${[...new Set(api.map((b) => b.outcome))].sort().join(', ')}) with a fault body`);
}

function badAmqp(r: RunRecord): InvariantRow {
  const amqp = r.badInputs.filter((b) => typeof b.outcome !== 'number');
  const missing = amqp.filter((b) => b.outcome !== 'dead-lettered').map((b) => `not dead-lettered: ${b.what}`);
  const touched = amqp.filter((b) => b.touched === true).map((b) => `acted on: ${b.what}`);
  const problems = [...missing, ...touched];
  return row(
    'malformed/oversized AMQP messages: dead-lettered, nothing done',
    amqp.length > 0 && problems.length === 0,
    problems.length ? few(problems) : `${amqp.length} bad messages, all in the dead-letter queue; no record or driver call for any resource they named`,
  );
}

/**
 * The election timeout of the test etcd clusters (test/support/etcd-cluster.ts): a new leader
 * extends every lease by it, so a kill's detection after an election may take that much longer.
 */
export const ETCD_ELECTION_TIMEOUT_MS = 1_000;

function killRows(r: RunRecord): InvariantRow[] {
  const ttl = r.leaseTtlMs;
  // Ops that left the victim before its lease could even expire were replaced by the API (the
  // stream's force-delete of an op in flight), not taken over: there was nothing left to detect.
  const superseded = (k: KillTiming): boolean => k.detectedAt === undefined && k.takenOverAt !== undefined && k.takenOverAt - k.killedAt < ttl;
  const supersededCount = r.kills.filter((k) => k.ops > 0 && superseded(k)).length;
  const withOps = r.kills.filter((k) => k.ops > 0 && !superseded(k));
  const clock = (k: KillTiming): number => Math.max(k.killedAt, k.electedAt ?? 0);
  const detect = withOps.flatMap((k) => (k.detectedAt === undefined ? [] : [k.detectedAt - clock(k)]));
  const takeover = withOps.flatMap((k) => (k.takenOverAt === undefined ? [] : [k.takenOverAt - clock(k)]));
  const afterElection = withOps.filter((k) => k.electedAt !== undefined).length;
  const undetected = withOps.filter((k) => k.detectedAt === undefined).length;
  const notTaken = withOps.filter((k) => k.takenOverAt === undefined).length;
  const d = p50max(detect);
  const t = p50max(takeover);
  const fmt = (s: { p50: number; max: number } | undefined): string => (s ? `p50 ${(s.p50 / 1000).toFixed(2)} s, max ${(s.max / 1000).toFixed(2)} s` : 'no sample');
  const bound = ttl + 1_000;
  // A new leader extends every lease by its election timeout on top of the TTL (etcd's lessor promotion).
  const late = withOps.filter((k) => k.detectedAt !== undefined && k.detectedAt - clock(k) > bound + (k.electedAt === undefined ? 0 : ETCD_ELECTION_TIMEOUT_MS));
  return [
    row(
      `kill -9 → orphans detected (bound TTL + 1 s = ${bound / 1000} s)`,
      withOps.length > 0 && undetected === 0 && late.length === 0,
      `${r.kills.length} kills, ${withOps.length} mid-operation: ${fmt(d)} (TTL ${ttl / 1000} s)${afterElection ? `; ${afterElection} counted from an etcd leader election after the kill, bound + its ${ETCD_ELECTION_TIMEOUT_MS / 1000} s election timeout (a new leader extends every lease by it)` : ''}${late.length ? `; ${late.length} late` : ''}${undetected ? `; ${undetected} never detected` : ''}${supersededCount ? `; ${supersededCount} whose ops the API replaced before the lease could expire (force-delete), left out` : ''}`,
    ),
    row('kill -9 → takeover of every orphan', withOps.length > 0 && notTaken === 0, `${fmt(t)} (TTL ${ttl / 1000} s)${notTaken ? `; ${notTaken} kills' orphans never taken over` : ''}`),
  ];
}

/** The rows as a fixed-width text table. */
export function formatTable(rows: readonly InvariantRow[]): string {
  const w = Math.max(9, ...rows.map((x) => x.name.length));
  const lines = [`${'invariant'.padEnd(w)} | result | detail`, `${'-'.repeat(w)}-|--------|-------`];
  for (const x of rows) lines.push(`${x.name.padEnd(w)} | ${x.result.padEnd(6)} | ${x.detail}`);
  return lines.join('\n');
}
