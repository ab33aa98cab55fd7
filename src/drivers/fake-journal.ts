/**
 * The fake driver's journal and its checker (pure: no I/O).
 *
 * The journal is a JSON-lines file all members append to: one line when a call starts and one
 * when it ends. `seq` numbers the calls of one process, so `(pid, seq)` pairs a start with its
 * end. `t` is wall-clock epoch ms with sub-millisecond precision; members on one machine share
 * the clock, which is what the tests that read journals use.
 *
 * The checker reports:
 * - **overlaps**: two calls on the same `resource` whose intervals intersect (touching ends do
 *   not). A call that never ended is taken to have lasted until the last line its process
 *   wrote (its last sign of life);
 * - **duplicates**: work that ran to success twice — a one-shot call (`createVolume`,
 *   `deleteVolume`, `createSnapshot`, `deleteSnapshot`) that succeeded more than once for the
 *   same resource, whatever the opIds, or `extendVolume` that succeeded more than once for the
 *   same resource and opId (extending again under a new op is legitimate). A takeover after a
 *   crash may legitimately re-run an idempotent call; the report names the members and opIds
 *   so a test can tell;
 * - **source deletions**: a delete of a resource while a copy (`createClonedVolume`,
 *   `createVolumeFromSnapshot`) that reads it as its `source` runs — the invariant "no source
 *   deleted under a running copy" (the copy's hold must keep the delete out);
 * - **unfinished**: calls with a start and no end (their process died or still runs);
 * - **malformed**: lines that are not journal entries (a torn write would show here).
 *
 * With replication, every line also names the `backend` the call works on and the `epoch` it
 * ran under, and a successful end names the `replicas` it copied its change to; a `failover`
 * line (resource `backend:<id>`) records each promotion. {@link backendWrites} answers "what
 * was written to this backend after that time" — after a failover, nothing on the old primary.
 */
import type { DriverCall } from './volume-driver.js';

/** What a journal line records: a driver call, or a replication failover. */
export type JournalCallName = DriverCall | 'failover';

/** One line of the journal. */
export interface JournalEntry {
  readonly call: JournalCallName;
  /** `volume:<id>` or `snapshot:<id>`. */
  readonly resource: string;
  /** A copy's source, `volume:<id>` or `snapshot:<id>` (the copy calls only). */
  readonly source?: string;
  readonly opId: string;
  /** Host id of the member that made the call. */
  readonly member: string;
  readonly pid: number;
  /** Per-process call number; pairs the start and end lines. */
  readonly seq: number;
  readonly event: 'start' | 'end';
  /** On `end`: whether the call succeeded. */
  readonly ok?: boolean;
  /** On a failed `end`: why. */
  readonly error?: string;
  /** Epoch ms (fractional). */
  readonly t: number;
  /** With replication: the backend the call works on (the active one; a failover's new one). */
  readonly backend?: string;
  /** With replication: the backend epoch the call ran under (0 when it named none). */
  readonly epoch?: number;
  /** With replication, on a successful `end` that changed something: the backends it copied the change to. */
  readonly replicas?: readonly string[];
}

/** One call, its start and end paired. */
export interface JournalCall {
  readonly call: JournalCallName;
  readonly resource: string;
  readonly source?: string;
  readonly opId: string;
  readonly member: string;
  readonly pid: number;
  readonly seq: number;
  readonly start: number;
  /** Absent when the call never ended. */
  readonly end?: number;
  readonly ok?: boolean;
  readonly backend?: string;
  readonly epoch?: number;
  /** From the end line. */
  readonly replicas?: readonly string[];
}

/** Two calls on one resource that ran at the same time. */
export interface Overlap {
  readonly resource: string;
  readonly first: JournalCall;
  readonly second: JournalCall;
}

/** Work that ran to success more than once. */
export interface Duplicate {
  readonly call: JournalCallName;
  readonly resource: string;
  readonly calls: readonly JournalCall[];
}

/** A delete of a copy's source while the copy ran. */
export interface SourceDeletion {
  readonly copy: JournalCall;
  readonly deletion: JournalCall;
}

/** What {@link checkJournal} found. */
export interface JournalReport {
  readonly calls: readonly JournalCall[];
  readonly overlaps: readonly Overlap[];
  readonly duplicates: readonly Duplicate[];
  readonly unfinished: readonly JournalCall[];
  readonly sourceDeletions: readonly SourceDeletion[];
  readonly malformed: number;
  /** Calls per member. */
  readonly byMember: Readonly<Record<string, number>>;
  /** True when there is nothing to report. */
  readonly ok: boolean;
}

const CALLS = new Set<string>([
  'createVolume',
  'deleteVolume',
  'extendVolume',
  'createSnapshot',
  'deleteSnapshot',
  'createClonedVolume',
  'createVolumeFromSnapshot',
  'initializeConnection',
  'terminateConnection',
  'failover',
]);
const ONE_SHOT = new Set<string>(['createVolume', 'deleteVolume', 'createSnapshot', 'deleteSnapshot', 'createClonedVolume', 'createVolumeFromSnapshot']);
const DELETES = new Set<string>(['deleteVolume', 'deleteSnapshot']);

/** Serializes one entry as a journal line (with its newline). */
export function formatJournalEntry(entry: JournalEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

/** Splits journal text into entries; lines that are not entries are returned as malformed. */
export function parseJournal(text: string): { entries: JournalEntry[]; malformed: string[] } {
  const entries: JournalEntry[] = [];
  const malformed: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      malformed.push(line);
      continue;
    }
    if (isEntry(value)) entries.push(value);
    else malformed.push(line);
  }
  return { entries, malformed };
}

function isEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.call === 'string' &&
    CALLS.has(e.call) &&
    typeof e.resource === 'string' &&
    typeof e.opId === 'string' &&
    typeof e.member === 'string' &&
    typeof e.pid === 'number' &&
    typeof e.seq === 'number' &&
    (e.event === 'start' || e.event === 'end') &&
    typeof e.t === 'number'
  );
}

/** Pairs starts with ends and reports overlaps, duplicates and unfinished calls. */
export function checkJournal(entries: readonly JournalEntry[], malformed = 0): JournalReport {
  const calls = pairCalls(entries);
  const lastSeen = new Map<number, number>();
  for (const e of entries) lastSeen.set(e.pid, Math.max(lastSeen.get(e.pid) ?? e.t, e.t));
  const unfinished = calls.filter((c) => c.end === undefined);
  const overlaps = findOverlaps(calls, (c) => c.end ?? lastSeen.get(c.pid) ?? c.start);
  const duplicates = findDuplicates(calls);
  const sourceDeletions = findSourceDeletions(calls, (c) => c.end ?? lastSeen.get(c.pid) ?? c.start);
  const byMember: Record<string, number> = {};
  for (const c of calls) byMember[c.member] = (byMember[c.member] ?? 0) + 1;
  const ok = overlaps.length === 0 && duplicates.length === 0 && unfinished.length === 0 && sourceDeletions.length === 0 && malformed === 0;
  return { calls, overlaps, duplicates, unfinished, sourceDeletions, malformed, byMember, ok };
}

function pairCalls(entries: readonly JournalEntry[]): JournalCall[] {
  const open = new Map<string, JournalEntry>();
  const calls: JournalCall[] = [];
  const sorted = [...entries].sort((a, b) => a.t - b.t);
  for (const e of sorted) {
    const key = `${e.pid}:${e.seq}`;
    if (e.event === 'start') {
      open.set(key, e);
      continue;
    }
    const start = open.get(key);
    if (!start) continue; // An end without its start: the journal was cut; nothing to pair.
    open.delete(key);
    calls.push({ ...base(start), end: e.t, ...(e.ok === undefined ? {} : { ok: e.ok }), ...(e.replicas === undefined ? {} : { replicas: e.replicas }) });
  }
  for (const start of open.values()) calls.push(base(start));
  return calls.sort((a, b) => a.start - b.start);
}

function base(e: JournalEntry): JournalCall {
  return {
    call: e.call,
    resource: e.resource,
    ...(e.source === undefined ? {} : { source: e.source }),
    opId: e.opId,
    member: e.member,
    pid: e.pid,
    seq: e.seq,
    start: e.t,
    ...(e.backend === undefined ? {} : { backend: e.backend }),
    ...(e.epoch === undefined ? {} : { epoch: e.epoch }),
  };
}

/** Calls that change a resource on the storage. */
const WRITES = new Set<string>([...ONE_SHOT, 'extendVolume']);

/**
 * The successful calls that wrote to `backendId` — as the backend they worked on or as one of
 * their replicas — and ended after `afterT` (epoch ms; default: any time). After a failover
 * away from the primary, this is empty for `default` until the failback.
 */
export function backendWrites(calls: readonly JournalCall[], backendId: string, afterT = Number.NEGATIVE_INFINITY): JournalCall[] {
  return calls.filter(
    (c) => c.ok === true && WRITES.has(c.call) && (c.end ?? c.start) > afterT && (c.backend === backendId || (c.replicas ?? []).includes(backendId)),
  );
}

/** Deletes of a resource whose interval meets a copy reading it (touching ends do not). */
function findSourceDeletions(calls: readonly JournalCall[], endOf: (c: JournalCall) => number): SourceDeletion[] {
  const deletes = new Map<string, JournalCall[]>();
  for (const c of calls) if (DELETES.has(c.call)) deletes.set(c.resource, [...(deletes.get(c.resource) ?? []), c]);
  const found: SourceDeletion[] = [];
  for (const copy of calls) {
    if (copy.source === undefined) continue;
    for (const deletion of deletes.get(copy.source) ?? []) {
      if (deletion.start < endOf(copy) && copy.start < endOf(deletion)) found.push({ copy, deletion });
    }
  }
  return found;
}

function findOverlaps(calls: readonly JournalCall[], endOf: (c: JournalCall) => number): Overlap[] {
  const byResource = new Map<string, JournalCall[]>();
  for (const c of calls) byResource.set(c.resource, [...(byResource.get(c.resource) ?? []), c]);
  const overlaps: Overlap[] = [];
  for (const [resource, list] of byResource) {
    // `list` is sorted by start: a later call overlaps an earlier one that has not ended.
    for (let i = 0; i < list.length; i++) {
      const first = list[i] as JournalCall;
      for (let j = i + 1; j < list.length; j++) {
        const second = list[j] as JournalCall;
        if (second.start >= endOf(first)) break;
        overlaps.push({ resource, first, second });
      }
    }
  }
  return overlaps;
}

function findDuplicates(calls: readonly JournalCall[]): Duplicate[] {
  const groups = new Map<string, JournalCall[]>();
  for (const c of calls) {
    // A failover run again after its runner died is meant to succeed again.
    if (c.ok !== true || c.call === 'failover') continue;
    const key = ONE_SHOT.has(c.call) ? `${c.call}|${c.resource}` : `${c.call}|${c.resource}|${c.opId}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()]
    .filter((g) => g.length > 1)
    .map((g) => ({ call: (g[0] as JournalCall).call, resource: (g[0] as JournalCall).resource, calls: g }));
}
