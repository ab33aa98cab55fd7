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
 * The census on etcd: the status of every resource and a summary of every op, in memory,
 * kept from a watch. It lists `resources/` and `ops/` once (in pages, at one revision), then
 * watches both from the next revision; when etcd cancels a watch (its revision was compacted)
 * it lists again. Memory: one small entry per record (about 100 bytes: 10 MB at 100,000).
 *
 * Failure semantics: while etcd cannot be reached the watch resumes by itself from its
 * revision; a list that fails is retried with the `retry` waits. The counts are those of the
 * last revision seen meanwhile.
 */
export class EtcdCensus implements Census {
  private readonly statuses = new Map<string, { type: string; status: string }>();
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
    this.statuses.clear();
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
    this.statuses.clear();
    this.counts.clear();
    this.ops.clear();
    let revision: string | undefined;
    for (const prefix of [this.resourcesPrefix, this.opsPrefix]) {
      let from = prefix;
      for (;;) {
        const res = await this.options.client.kv.range({ key: Buffer.from(from), range_end: rangeEnd(prefix), limit: PAGE, ...(revision ? { revision } : {}) });
        revision ??= res.header.revision;
        for (const kv of res.kvs) this.put(kv);
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

  private put(kv: IKeyValue): void {
    const key = kv.key.toString();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(kv.value.toString()) as Record<string, unknown>;
    } catch {
      return;
    }
    if (key.startsWith(this.opsPrefix)) {
      if (typeof body.kind === 'string' && typeof body.cluster === 'string' && typeof body.createdAt === 'number') {
        this.ops.set(key, { kind: body.kind, cluster: body.cluster, createdAtMs: body.createdAt });
      }
      return;
    }
    const type = key.slice(this.resourcesPrefix.length).split('/')[0] ?? '';
    if (typeof body.status !== 'string' || type === '') return;
    this.remove(key);
    this.statuses.set(key, { type, status: body.status });
    this.bump(countKey(type, body.status), 1);
  }

  private remove(key: string): void {
    if (this.ops.delete(key)) return;
    const old = this.statuses.get(key);
    if (!old) return;
    this.statuses.delete(key);
    this.bump(countKey(old.type, old.status), -1);
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
        const w = this.options.client.watch().prefix(prefix).startRevision(start.toString()).watcher();
        watchers.push(w);
        // etcd3 resumes from the header of its last response, which can pass events still in
        // flight; resume from the first revision not yet applied instead.
        let next = start;
        const seen = (kv: IKeyValue): void => {
          const after = BigInt(kv.mod_revision) + 1n;
          if (after > next) next = after;
        };
        w.on('put', (kv) => {
          seen(kv);
          this.put(kv);
        });
        w.on('delete', (kv) => {
          seen(kv);
          this.remove(kv.key.toString());
        });
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

/** The end of a prefix range: the prefix with its last byte incremented. */
function rangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}
