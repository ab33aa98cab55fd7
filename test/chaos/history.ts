/**
 * Reads etcd's history of a run (every put and delete under the prefix since revision 1, with
 * the previous values) and decodes the events the fenced-write check needs. The run's private
 * etcd never compacts within a run (the runner starts it with a huge retention), so the whole
 * history is there.
 */
import type { Etcd3, IKeyValue, IWatchResponse } from 'etcd3';
import type { HistoryEvent } from './invariants.js';

/** One raw watch event: the key, values before and after (null on a delete), the revision. */
export interface RawEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: string | null;
  readonly prev: string | null;
  readonly revision: number;
  readonly createRevision: number;
}

/**
 * Every event under `prefix` from revision 1 up to a marker written now. Failure semantics: etcd
 * unreachable or the history compacted → throws (the caller's check then fails loudly).
 */
export async function readHistory(client: Etcd3, prefix: string, timeoutMs = 60_000): Promise<RawEvent[]> {
  const marker = `${prefix}/chaos-history-end`;
  const end = Number((await client.put(marker).value(String(Date.now())).exec()).header.revision);
  const events: RawEvent[] = [];
  const watcher = await client.watch().prefix(`${prefix}/`).startRevision('1').withPreviousKV().create();
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
  };
}

type Owner = { incarnation: string; aliveRevision: number } | null;

function ownerOf(json: string | null): Owner {
  if (json === null) return null;
  const o = (JSON.parse(json) as { owner?: { incarnation: string; aliveRevision: string } | null }).owner;
  return o ? { incarnation: o.incarnation, aliveRevision: Number(o.aliveRevision) } : null;
}

/** Decodes the alive, op and resource events of `events` (pure); other keys are skipped. */
export function decodeHistory(prefix: string, events: readonly RawEvent[]): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  for (const e of events) {
    const rest = e.key.startsWith(`${prefix}/`) ? e.key.slice(prefix.length + 1) : undefined;
    if (rest === undefined) continue;
    if (rest.startsWith('alive/')) {
      const host = rest.slice('alive/'.length);
      if (e.type === 'delete') out.push({ revision: e.revision, kind: 'alive-delete', host });
      else out.push({ revision: e.revision, kind: 'alive-put', host, incarnation: (JSON.parse(e.value ?? '{}') as { incarnation: string }).incarnation, createRevision: e.createRevision });
    } else if (rest.startsWith('ops/')) {
      if (e.type === 'delete') out.push({ revision: e.revision, kind: 'op-delete', key: rest, prevOwner: ownerOf(e.prev) });
      else out.push({ revision: e.revision, kind: 'op-put', key: rest, owner: ownerOf(e.value), prevOwner: ownerOf(e.prev) });
    } else if (rest.startsWith('resources/') && e.type === 'put') {
      const r = JSON.parse(e.value ?? '{}') as { updated_by?: string; status: string };
      out.push({ revision: e.revision, kind: 'resource-put', key: rest, updatedBy: r.updated_by ?? null, status: r.status });
    }
  }
  return out;
}
