/**
 * The `fake` driver: no storage at all. Each call waits `latencyMs`, fails with probability
 * `failureRate` (a non-retryable DriverError), and is recorded in a journal shared by every
 * member (`fake-journal.ts` reads it back), so tests can prove that no two calls on one resource
 * overlapped and that nothing ran twice. Being stateless, it succeeds for anything that passes
 * validation, which keeps it deterministic however members interleave; the journal checker, not
 * the driver, judges the interleaving.
 *
 * Health and capacity: `up` unless the file `downFile` exists (its first line is the reason), so a
 * test can take one member's backend down and bring it back; the pool is `capacityGiB` large and
 * empty (the driver keeps nothing). `hang` names calls that never finish by themselves: they wait
 * for their signal (an abort — a drain, a lost lock, a force-delete's notice), or, with
 * `hangIgnoresAbort`, for ever (a call stuck in the kernel), so tests can catch an operation
 * mid-call for as long as they like.
 *
 * Journal writes: the file is opened with `O_APPEND` and each line goes out in one `write`, so
 * lines of concurrent processes never interleave; within a process writes are serialised.
 * The start line is written before the work and the end line after it.
 */
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { AbortedError, BackendUnavailableError, ClosedError, DriverError } from '../errors.js';
import { sleep } from '../lifecycle/clock.js';
import { formatJournalEntry, type JournalEntry } from './fake-journal.js';
import { FenceMarkers } from './fence-markers.js';
import {
  type BackendHealth,
  type Capacity,
  type ConnectionInfo,
  type Connector,
  checkNotAborted,
  checkResourceId,
  checkSizeGiB,
  type DriverCall,
  type DriverContext,
  DEFAULT_POOL_SETTINGS,
  GIB,
  type PoolSettings,
  type SnapshotRef,
  type SnapshotSpec,
  type VolumeDriver,
  type VolumeRef,
  type VolumeSpec,
} from './volume-driver.js';

/** Call numbers are unique per process (not per driver), so `(pid, seq)` identifies a call. */
let lastSeq = 0;

/** Options of {@link FakeVolumeDriver}. */
export interface FakeVolumeDriverOptions {
  /** How long each call takes (`driver.fakeLatencyMs`). */
  readonly latencyMs?: number;
  /** Share of calls that fail, 0..1 (`driver.fakeFailureRate`). */
  readonly failureRate?: number;
  /** Journal file shared by all members (`driver.fakeJournal`); none when empty or absent. */
  readonly journalPath?: string;
  /** Source of randomness in [0, 1); inject a seeded one in tests. Default Math.random. */
  readonly random?: () => number;
  /** Declares active/active support; false only to test the refusal. Default true. */
  readonly supportsActiveActive?: boolean;
  /** Where fence markers go (shared by every member, like the journal): `<journalPath>.fenced` by default; none without a journal. */
  readonly fenceDir?: string;
  /** While this file exists the backend is down, its first line the reason (`driver.fakeDownFile`). */
  readonly downFile?: string;
  /** Size of the pool in GiB (`driver.fakeCapacityGiB`, default 1024). */
  readonly capacityGiB?: number;
  /** Over-subscription and reserve of the pool. */
  readonly pool?: PoolSettings;
  /** Calls that never finish by themselves (`driver.fakeHang`). */
  readonly hang?: readonly DriverCall[];
  /** A hanging call ignores its signal too (`driver.fakeHangIgnoresAbort`). */
  readonly hangIgnoresAbort?: boolean;
}

/** See the module doc. */
export class FakeVolumeDriver implements VolumeDriver {
  readonly name = 'fake';
  readonly supportsActiveActive: boolean;
  private readonly latencyMs: number;
  private readonly failureRate: number;
  private readonly random: () => number;
  private journal: FileHandle | undefined;
  private writes: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly fences: FenceMarkers | undefined;
  private readonly hanging = new Set<() => void>();

  private constructor(
    private readonly options: FakeVolumeDriverOptions,
    journal: FileHandle | undefined,
  ) {
    const fenceDir = options.fenceDir ?? (options.journalPath ? `${options.journalPath}.fenced` : undefined);
    this.fences = fenceDir === undefined ? undefined : new FenceMarkers(fenceDir);
    this.latencyMs = options.latencyMs ?? 0;
    this.failureRate = options.failureRate ?? 0;
    this.random = options.random ?? Math.random;
    this.supportsActiveActive = options.supportsActiveActive ?? true;
    this.journal = journal;
  }

  /** Opens the journal (if any) for appending and returns the driver. */
  static async open(options: FakeVolumeDriverOptions = {}): Promise<FakeVolumeDriver> {
    const journal = options.journalPath ? await open(options.journalPath, 'a', 0o600) : undefined;
    return new FakeVolumeDriver(options, journal);
  }

  async createVolume(volume: VolumeSpec, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    await this.perform('createVolume', `volume:${volume.id}`, ctx);
  }

  async deleteVolume(volume: VolumeRef, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    await this.perform('deleteVolume', `volume:${volume.id}`, ctx);
  }

  async extendVolume(volume: VolumeRef, newSizeGiB: number, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(newSizeGiB);
    await this.perform('extendVolume', `volume:${volume.id}`, ctx);
  }

  async createClonedVolume(volume: VolumeSpec, source: VolumeRef, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    checkResourceId(source.id, 'volume');
    await this.perform('createClonedVolume', `volume:${volume.id}`, ctx, `volume:${source.id}`);
  }

  async createVolumeFromSnapshot(volume: VolumeSpec, snapshot: SnapshotRef, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    checkResourceId(snapshot.id, 'snapshot');
    await this.perform('createVolumeFromSnapshot', `volume:${volume.id}`, ctx, `snapshot:${snapshot.id}`);
  }

  async createSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    checkResourceId(snapshot.id, 'snapshot');
    checkResourceId(snapshot.volumeId, 'volume');
    await this.perform('createSnapshot', `snapshot:${snapshot.id}`, ctx);
  }

  async deleteSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    checkResourceId(snapshot.id, 'snapshot');
    await this.perform('deleteSnapshot', `snapshot:${snapshot.id}`, ctx);
  }

  /** Journals the call under the volume; the answer names the volume and nothing real. */
  async initializeConnection(volume: VolumeRef, _connector: Connector, ctx: DriverContext): Promise<ConnectionInfo> {
    checkResourceId(volume.id, 'volume');
    await this.perform('initializeConnection', `volume:${volume.id}`, ctx);
    return { driver_volume_type: 'fake', data: { volume_id: volume.id } };
  }

  async terminateConnection(volume: VolumeRef, _connector: Connector | null, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    await this.perform('terminateConnection', `volume:${volume.id}`, ctx);
  }

  /** Marks `incarnation` fenced beside the journal: its calls refuse to start, and stop at their step boundary. */
  async fenceIncarnation(incarnation: string): Promise<void> {
    await this.fences?.mark(incarnation);
  }

  async health(): Promise<BackendHealth> {
    if (this.closed) return { state: 'down', reason: 'the fake volume driver is closed' };
    const file = this.options.downFile;
    if (!file) return { state: 'up' };
    try {
      const text = await readFile(file, 'utf8');
      return { state: 'down', reason: text.split('\n')[0]?.trim() || `${file} exists` };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'up' };
      return { state: 'down', reason: `cannot read ${file}: ${(err as Error).message}` };
    }
  }

  async capacity(): Promise<Capacity> {
    if (this.closed) throw new ClosedError('fake volume driver');
    if ((await this.health()).state === 'down') throw new BackendUnavailableError('filesystem', 'the fake backend is down');
    const total = (this.options.capacityGiB ?? 1024) * GIB;
    const pool = this.options.pool ?? DEFAULT_POOL_SETTINGS;
    return { totalBytes: total, freeBytes: total, provisionedBytes: 0, allocatedBytes: 0, thin: true, ...pool };
  }

  /** Flushes pending journal lines and closes the journal; calls hanging for ever end (aborted). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const end of this.hanging) end();
    await this.writes;
    await this.journal?.close();
    this.journal = undefined;
  }

  /** One journaled call on `resource`; a copy also names the `source` it reads. */
  private async perform(call: DriverCall, resource: string, ctx: DriverContext, source?: string): Promise<void> {
    if (this.closed) throw new ClosedError('fake volume driver');
    checkNotAborted(ctx, call);
    await this.fences?.refuseIfFenced(ctx.incarnation);
    const seq = ++lastSeq;
    const line = (event: 'start' | 'end', extra: Partial<JournalEntry> = {}): JournalEntry => ({
      call,
      resource,
      opId: ctx.opId,
      member: ctx.member,
      pid: process.pid,
      seq,
      event,
      ...(source === undefined ? {} : { source }),
      ...extra,
      t: performance.timeOrigin + performance.now(),
    });
    await this.record(line('start'));
    try {
      if (this.options.hang?.includes(call)) await this.hang(ctx, call);
      if (this.latencyMs > 0) {
        await sleep(this.latencyMs, ctx.signal);
        // The end of the simulated work is a step boundary, as in a real driver of several steps.
        checkNotAborted(ctx, call);
        await this.fences?.refuseIfFenced(ctx.incarnation);
      }
      if (this.failureRate > 0 && this.random() < this.failureRate) {
        throw new DriverError(this.name, call, `injected failure on ${resource}`);
      }
    } catch (err) {
      await this.record(line('end', { ok: false, error: err instanceof Error ? err.message : String(err) }));
      throw err;
    }
    await this.record(line('end', { ok: true }));
  }

  /** Waits for the call's signal — or, ignoring it, until the driver closes. */
  private hang(ctx: DriverContext, call: DriverCall): Promise<void> {
    const ignore = this.options.hangIgnoresAbort === true;
    return new Promise<void>((_resolve, reject) => {
      const end = (): void => {
        this.hanging.delete(end);
        ctx.signal.removeEventListener('abort', end);
        reject(new AbortedError(`driver call ${call}`, { cause: ctx.signal.reason }));
      };
      this.hanging.add(end);
      if (!ignore) {
        if (ctx.signal.aborted) end();
        else ctx.signal.addEventListener('abort', end, { once: true });
      }
    });
  }

  /** Appends one line; lines of this process go out in order, each in a single write. */
  private record(entry: JournalEntry): Promise<void> {
    const journal = this.journal;
    if (!journal) return Promise.resolve();
    const data = Buffer.from(formatJournalEntry(entry));
    const write = this.writes.then(async () => {
      await journal.write(data);
    });
    this.writes = write.catch(() => undefined);
    return write;
  }
}
