/**
 * Reads etcd's history of a run (every put and delete under the prefix since revision 1, with
 * the previous values) and decodes the events the checks need: members' lives, ops, final
 * statuses, incarnation and end records, fence operations and lock keys. The run's private
 * etcd never compacts within a run (the runner starts it with a huge retention), so the whole
 * history is there.
 */
import type { Etcd3, IKeyValue, IWatchResponse } from 'etcd3';

/** An op's owner as its record names it. */
export type OwnerOfOp = { readonly incarnation: string; readonly aliveRevision: number } | null;

/** One event of etcd's history under the run's prefix, decoded. */
export type HistoryEvent =
  | {
      readonly revision: number;
      readonly kind: 'alive-put';
      readonly host: string;
      readonly incarnation: string;
      readonly createRevision: number;
      /** The backend report the alive entry carries (absent: none yet). */
      readonly backend?: 'up' | 'down';
    }
  | { readonly revision: number; readonly kind: 'alive-delete'; readonly host: string }
  | {
      readonly revision: number;
      readonly kind: 'op-put' | 'op-delete';
      readonly key: string;
      /** The owner's incarnation after the write (null: queued; absent on a delete). */
      readonly owner?: OwnerOfOp;
      /** The owner before the write (null: queued or new). */
      readonly prevOwner: OwnerOfOp;
      /** The op's id after the write (absent on a delete, or where a test leaves it out). */
      readonly opId?: string | null;
      /** The op's id before the write (null: none was there). A put with another id replaced that op: an admin's force-delete. */
      readonly prevOpId?: string | null;
    }
  | {
      readonly revision: number;
      readonly kind: 'resource-put';
      readonly key: string;
      readonly updatedBy: string | null;
      readonly status: string;
      /** A volume's attachments in this write (absent: none, or not a volume). */
      readonly attachments?: number;
    }
  /** `incarnations/<inc>`: which process ran it (its pid; null when not recorded). */
  | { readonly revision: number; readonly kind: 'incarnation-put'; readonly incarnation: string; readonly host: string; readonly pid: number | null }
  /** `fenced/<inc>` written: how the incarnation ended for good (`created`: the key's first version). */
  | { readonly revision: number; readonly kind: 'end-put'; readonly incarnation: string; readonly host: string; readonly how: string; readonly by: string; readonly atMs: number; readonly created: boolean }
  /** `fences/<inc>` written: a fence operation asked for, claimed, or an attempt that failed. */
  | { readonly revision: number; readonly kind: 'fence-op-put'; readonly incarnation: string; readonly diedAtMs: number; readonly runner: string | null; readonly lastError: string | null }
  /** A lock key written: `version` 1 is the contender's enqueue, ≥ 2 its hand-off mark. */
  | { readonly revision: number; readonly kind: 'lock-put'; readonly lock: string; readonly key: string; readonly holder: string | null; readonly version: number; readonly createRevision: number }
  | { readonly revision: number; readonly kind: 'lock-delete'; readonly lock: string; readonly key: string; readonly holder: string | null };

/** One raw watch event: the key, values before and after (null on a delete), the revision. */
export interface RawEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: string | null;
  readonly prev: string | null;
  readonly revision: number;
  readonly createRevision: number;
  /** The key's version after the event (0 on a delete). */
  readonly version?: number;
}

/**
 * Every event under `prefix` from `fromRevision` (default 1: the whole history of a private
 * etcd) up to a marker written now. Failure semantics: etcd unreachable or the history
 * compacted → throws (the caller's check then fails loudly).
 */
export async function readHistory(client: Etcd3, prefix: string, timeoutMs = 60_000, fromRevision = 1): Promise<RawEvent[]> {
  const marker = `${prefix}/chaos-history-end`;
  const end = Number((await client.put(marker).value(String(Date.now())).exec()).header.revision);
  const events: RawEvent[] = [];
  const watcher = await client.watch().prefix(`${prefix}/`).startRevision(String(fromRevision)).withPreviousKV().create();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`etcd history: timed out at ${events.at(-1)?.revision ?? 0} of ${end}`)), timeoutMs);
      watcher.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      watcher.on('data', (res: IWatchResponse) => {
        if (res.compact_revision !== '0' && res.compact_revision !== undefined) {
          clearTimeout(timer);
          reject(new Error(`etcd history compacted at ${res.compact_revision}`));
          return;
        }
        for (const e of res.events) events.push(raw(e.type === 'Delete' ? 'delete' : 'put', e.kv, e.prev_kv));
        if ((events.at(-1)?.revision ?? 0) >= end) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    await watcher.cancel();
  }
  return events.filter((e) => e.key !== marker);
}

function raw(type: 'put' | 'delete', kv: IKeyValue, prev: IKeyValue | undefined): RawEvent {
  return {
    type,
    key: kv.key.toString(),
    value: type === 'put' ? kv.value.toString() : null,
    prev: prev ? prev.value.toString() : null,
    revision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  };
}

function opIdOf(json: string | null): string | null {
  if (json === null) return null;
  const id = (JSON.parse(json) as { opId?: unknown }).opId;
  return typeof id === 'string' ? id : null;
}

function ownerOf(json: string | null): OwnerOfOp {
  if (json === null) return null;
  const o = (JSON.parse(json) as { owner?: { incarnation: string; aliveRevision: string } | null }).owner;
  return o ? { incarnation: o.incarnation, aliveRevision: Number(o.aliveRevision) } : null;
}

type Json = Record<string, unknown>;
const json = (text: string | null): Json => JSON.parse(text ?? '{}') as Json;
const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** `locks/<name>/<leaseHex>` → the lock's name (everything up to the last slash). */
function lockName(rest: string): string {
  return rest.slice('locks/'.length, rest.lastIndexOf('/'));
}

/**
 * Decodes the alive, op, resource, incarnation, end, fence-operation and lock events of
 * `events` (pure); other keys are skipped.
 */
export function decodeHistory(prefix: string, events: readonly RawEvent[]): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  for (const e of events) {
    const rest = e.key.startsWith(`${prefix}/`) ? e.key.slice(prefix.length + 1) : undefined;
    if (rest === undefined) continue;
    if (rest.startsWith('locks/')) {
      const holder = text(e.type === 'put' ? e.value : e.prev) || null;
      if (e.type === 'delete') out.push({ revision: e.revision, kind: 'lock-delete', lock: lockName(rest), key: rest, holder });
      else out.push({ revision: e.revision, kind: 'lock-put', lock: lockName(rest), key: rest, holder, version: e.version ?? 1, createRevision: e.createRevision });
    } else if (rest.startsWith('incarnations/') && e.type === 'put') {
      const r = json(e.value);
      const pid = (r.process as Json | null | undefined)?.pid;
      out.push({ revision: e.revision, kind: 'incarnation-put', incarnation: String(r.incarnation), host: String(r.host), pid: typeof pid === 'number' ? pid : null });
    } else if (rest.startsWith('fenced/') && e.type === 'put') {
      const r = json(e.value);
      out.push({ revision: e.revision, kind: 'end-put', incarnation: String(r.incarnation), host: String(r.host), how: String(r.how), by: String(r.by), atMs: Number(r.atMs), created: e.createRevision === e.revision });
    } else if (rest.startsWith('fences/') && e.type === 'put') {
      const r = json(e.value);
      const owner = r.owner as Json | null | undefined;
      out.push({ revision: e.revision, kind: 'fence-op-put', incarnation: String(r.incarnation), diedAtMs: Number(r.diedAtMs), runner: text(owner?.incarnation), lastError: text(r.lastError) });
    } else if (rest.startsWith('alive/')) {
      const host = rest.slice('alive/'.length);
      if (e.type === 'delete') out.push({ revision: e.revision, kind: 'alive-delete', host });
      else {
        const alive = JSON.parse(e.value ?? '{}') as { incarnation: string; backend?: { state?: unknown } };
        const state = alive.backend?.state;
        out.push({ revision: e.revision, kind: 'alive-put', host, incarnation: alive.incarnation, createRevision: e.createRevision, ...(state === 'up' || state === 'down' ? { backend: state } : {}) });
      }
    } else if (rest.startsWith('ops/')) {
      if (e.type === 'delete') out.push({ revision: e.revision, kind: 'op-delete', key: rest, prevOwner: ownerOf(e.prev), prevOpId: opIdOf(e.prev) });
      else out.push({ revision: e.revision, kind: 'op-put', key: rest, owner: ownerOf(e.value), prevOwner: ownerOf(e.prev), opId: opIdOf(e.value), prevOpId: opIdOf(e.prev) });
    } else if (rest.startsWith('resources/') && e.type === 'put') {
      const r = JSON.parse(e.value ?? '{}') as { updated_by?: string; status: string; attachments?: unknown[] };
      const attachments = Array.isArray(r.attachments) && r.attachments.length > 0 ? { attachments: r.attachments.length } : {};
      out.push({ revision: e.revision, kind: 'resource-put', key: rest, updatedBy: r.updated_by ?? null, status: r.status, ...attachments });
    }
  }
  return out;
}
