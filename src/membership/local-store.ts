import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BackendUnavailableError, CoordinatorError, messageOf } from '../errors.js';
import { decodeEnd, decodeIncarnation, type IncarnationEnd, type IncarnationRecord } from './incarnation-records.js';
import { type ClusterRecord, decodeCluster, decodeService, type ServiceRecord } from './records.js';

/** The durable part of single-node membership. */
export interface LocalRecords {
  readonly clusters: readonly ClusterRecord[];
  readonly services: readonly ServiceRecord[];
  /** Every incarnation this data directory ran (its process), until collected. */
  readonly incarnations: readonly IncarnationRecord[];
  /** How incarnations ended for good (left cleanly, or fenced). */
  readonly ends: readonly IncarnationEnd[];
  /** Each cluster's backend epoch as last raised (absent: 0); the record's `backendEpoch` follows it. */
  readonly epochs: Readonly<Record<string, number>>;
}

const EMPTY: LocalRecords = { clusters: [], services: [], incarnations: [], ends: [], epochs: {} };

/**
 * Cluster and service records of the single node in one JSON file (`<dataDir>/membership.json`),
 * replaced atomically (write a temporary file, fsync, rename) so a crash leaves either the old
 * or the new content, never a mix. Updates run one at a time, each on the latest content.
 */
export class LocalRecordFile {
  private current: LocalRecords;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    initial: LocalRecords,
  ) {
    this.current = initial;
  }

  /**
   * Opens the file, or starts empty when it does not exist.
   *
   * Failure semantics: a file that exists but cannot be read or parsed is an error (nothing is
   * overwritten): `BackendUnavailableError` for I/O, `CoordinatorError('INTERNAL')` for content.
   */
  static async open(path: string): Promise<LocalRecordFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new LocalRecordFile(path, EMPTY);
      throw new BackendUnavailableError('filesystem', `cannot read ${path}: ${messageOf(err)}`, { cause: err });
    }
    return new LocalRecordFile(path, parse(path, text));
  }

  /** The records as last written. */
  read(): LocalRecords {
    return this.current;
  }

  /**
   * Applies `change` to the latest records and writes the result. If `change` throws, nothing
   * is written and the error is passed on; if it returns the same object, nothing is written.
   *
   * Failure semantics: a failed write leaves the file as it was and rejects with a
   * `BackendUnavailableError`; the in-memory copy is updated only after the rename.
   */
  update<T>(change: (records: LocalRecords) => { records: LocalRecords; result: T }): Promise<T> {
    const run = this.tail.then(async () => {
      const { records, result } = change(this.current);
      if (records !== this.current) {
        await this.write(records);
        this.current = records;
      }
      return result;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async write(records: LocalRecords): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(`${JSON.stringify({ version: 1, ...records }, null, 1)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      throw new BackendUnavailableError('filesystem', `cannot write ${this.path}: ${messageOf(err)}`, { cause: err });
    }
  }
}

function parse(path: string, text: string): LocalRecords {
  try {
    const o = JSON.parse(text) as { clusters?: unknown[]; services?: unknown[]; incarnations?: unknown[]; ends?: unknown[]; epochs?: Record<string, unknown> };
    return {
      clusters: (o.clusters ?? []).map((c) => decodeCluster(JSON.stringify(c))),
      services: (o.services ?? []).map((s) => decodeService(JSON.stringify(s))),
      incarnations: (o.incarnations ?? []).map((i) => decodeIncarnation(JSON.stringify(i))),
      ends: (o.ends ?? []).map((e) => decodeEnd(JSON.stringify(e))),
      epochs: decodeEpochs(o.epochs ?? {}),
    };
  } catch (err) {
    throw new CoordinatorError('INTERNAL', `${path} is damaged (${messageOf(err)}); restore it or move it away to start afresh`, { cause: err });
  }
}

function decodeEpochs(o: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cluster, epoch] of Object.entries(o)) {
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`epochs.${cluster} must be a non-negative integer`);
    out[cluster] = epoch;
  }
  return out;
}
