import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import { type Census, type CensusSnapshot, countKey } from './census.js';

/** Records read per range call while listing (keeps each answer small). */
const PAGE = 1_000;

interface OpSummary {
  readonly cluster: string;
  readonly kind: string;
  readonly createdAtMs: number;
}

/** What {@link EtcdCensus} needs. */
export interface EtcdCensusOptions {
  readonly client: Etcd3;
  readonly keys: KeyLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/**
 * The census on etcd: counts per type and status, and a summary of every unfinished op, in
 * memory, kept from a watch. It lists `resources/` and `ops/` once (in pages, at one
 * revision), counting as it reads, then watches both from the next revision with each event's
 * previous value (`prev_kv`): a put moves one count from the previous value's status to the
 * new one, a delete takes one off the previous value's. So it holds no entry per record —
 * memory does not grow with the number of volumes — only one per unfinished op (few: ops end).
 *
 * When etcd cancels a watch (its revision was compacted), or sends a change without the
 * previous value it needs (etcd omits it when that revision was compacted meanwhile), it lists
 * again: the counts are exact or rebuilt, never guessed.
 *
 * Failure semantics: while etcd cannot be reached the watch resumes by itself from the first
 * revision not yet applied (an event is never counted twice); a list that fails is retried
 * with the `retry` waits. The counts are those of the last revision seen meanwhile.
 */
export class EtcdCensus implements Census {
  private readonly counts = new Map<string, number>();
  private readonly ops = new Map<string, OpSummary>();
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: EtcdCensusOptions) {}

  async start(signal: AbortSignal): Promise<void> {
    const both = AbortSignal.any([signal, this.stop.signal]);
    const revision = await this.listUntilDone(both);
    this.loop ??= this.follow(revision, both);
  }

  async snapshot(): Promise<CensusSnapshot> {
    const resources = [...this.counts].map(([key, count]) => {
      const [type = '', status = ''] = key.split('\t');
      return { type, status, count };
    });
    const byKind = new Map<string, { cluster: string; kind: string; count: number; oldestCreatedAtMs: number }>();
    for (const op of this.ops.values()) {
      const key = `${op.cluster}\t${op.kind}`;
      const entry = byKind.get(key) ?? { cluster: op.cluster, kind: op.kind, count: 0, oldestCreatedAtMs: op.createdAtMs };
      entry.count++;
      entry.oldestCreatedAtMs = Math.min(entry.oldestCreatedAtMs, op.createdAtMs);
      byKind.set(key, entry);
    }
    return { resources, operations: [...byKind.values()] };
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    this.counts.clear();
    this.ops.clear();
  }

  private async listUntilDone(signal: AbortSignal): Promise<bigint> {
    for (let failures = 1; ; failures++) {
      try {
        return await this.list();
      } catch (err) {
        this.options.logger.warn({ err: fromEtcdError(err, 'census list') }, 'the census cannot list the records; retrying');
        if (!(await this.options.retry.wait(failures, this.options.clock, signal))) throw err;
      }
    }
  }

  /** Lists both prefixes at one revision, page by page, replacing what was known. */
  private async list(): Promise<bigint> {
    this.counts.clear();
    this.ops.clear();
    let revision: string | undefined;
    for (const prefix of [this.resourcesPrefix, this.opsPrefix]) {
      let from = prefix;
      for (;;) {
        const res = await this.options.client.kv.range({ key: Buffer.from(from), range_end: rangeEnd(prefix), limit: PAGE, ...(revision ? { revision } : {}) });
        revision ??= res.header.revision;
        for (const kv of res.kvs) this.put(kv, undefined, true);
        const last = res.kvs[res.kvs.length - 1];
        if (!res.more || !last) break;
        from = `${last.key.toString()}\0`;
      }
    }
    return BigInt(revision ?? '0');
  }

  private get resourcesPrefix(): string {
    return `${this.options.keys.prefix}/resources/`;
  }

  private get opsPrefix(): string {
    return this.options.keys.ops();
  }

  /**
   * Applies a put of `kv` whose value before was `previous` (undefined: the key was created, or
   * listed). Resolves false when it cannot count it: a change whose previous value etcd did not
   * send (the caller lists again).
   */
  private put(kv: IKeyValue, previous?: IKeyValue, listed = false): boolean {
    const key = kv.key.toString();
    if (key.startsWith(this.opsPrefix)) {
      const body = parse(kv);
      if (body && typeof body.kind === 'string' && typeof body.cluster === 'string' && typeof body.createdAt === 'number') {
        this.ops.set(key, { kind: body.kind, cluster: body.cluster, createdAtMs: body.createdAt });
      } else {
        this.ops.delete(key);
      }
      return true;
    }
    if (!listed && previous === undefined && kv.version !== '1') return false;
    if (previous) this.count(previous, -1);
    this.count(kv, 1);
    return true;
  }

  /** Applies a delete whose value before was `previous`; false when etcd did not send it. */
  private remove(kv: IKeyValue, previous: IKeyValue | undefined): boolean {
    const key = kv.key.toString();
    if (key.startsWith(this.opsPrefix)) {
      this.ops.delete(key);
      return true;
    }
    if (!previous) return false;
    this.count(previous, -1);
    return true;
  }

  /** Adds `by` to the count of the type and status a resource value holds (none when it holds no status). */
  private count(kv: IKeyValue, by: number): void {
    const type = kv.key.toString().slice(this.resourcesPrefix.length).split('/')[0] ?? '';
    const status = parse(kv)?.status;
    if (typeof status !== 'string' || type === '') return;
    this.bump(countKey(type, status), by);
  }

  private bump(key: string, by: number): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + by);
  }

  /** Watches both prefixes from `revision + 1`; lists again when a watch is cancelled. */
  private async follow(revision: bigint, signal: AbortSignal): Promise<void> {
    let next = revision + 1n;
    while (!signal.aborted) {
      const broke = await this.watch(next, signal);
      if (!broke) return;
      try {
        next = (await this.listUntilDone(signal)) + 1n;
      } catch {
        return;
      }
    }
  }

  /** Resolves true when the watch broke (re-list), false when `signal` aborted. */
  private watch(start: bigint, signal: AbortSignal): Promise<boolean> {
    const watchers: Watcher[] = [];
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (broke: boolean): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        for (const w of watchers) w.cancel().catch(() => undefined);
        resolve(broke);
      };
      const onAbort = (): void => finish(false);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) return finish(false);
      for (const prefix of [this.resourcesPrefix, this.opsPrefix]) {
        const w = this.options.client.watch().prefix(prefix).startRevision(start.toString()).withPreviousKV().watcher();
        watchers.push(w);
        // etcd3 resumes from the header of its last response, which can pass events still in
        // flight; resume from the first revision not yet applied instead. The counts move by
        // each event, so an event of an earlier revision (sent again) is skipped.
        let next = start;
        const apply = (kv: IKeyValue, change: () => boolean): void => {
          const revision = BigInt(kv.mod_revision);
          if (done || revision + 1n < next) return;
          if (revision + 1n > next) next = revision + 1n;
          if (change()) return;
          this.options.logger.info({ key: kv.key.toString() }, 'the census watch sent a change without its previous value; listing again');
          finish(true);
        };
        w.on('put', (kv, previous) => apply(kv, () => this.put(kv, previous)));
        w.on('delete', (kv, previous) => apply(kv, () => this.remove(kv, previous)));
        w.on('disconnected', () => {
          (w.request as { start_revision?: number | string }).start_revision = next.toString();
        });
        w.on('error', (err) => {
          this.options.logger.info({ err }, 'the census watch was cancelled; listing again');
          finish(true);
        });
      }
    });
  }
}

/** A value's JSON body; undefined when it is not a JSON object. */
function parse(kv: IKeyValue): Record<string, unknown> | undefined {
  try {
    const body = JSON.parse(kv.value.toString()) as unknown;
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The end of a prefix range: the prefix with its last byte incremented. */
function rangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}
