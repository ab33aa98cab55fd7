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
 *
 * Replication (`replicationTargets`, docs/drivers.md): the same semantics as the file driver's,
 * on a simulated inventory — one empty `volume-<id>` / `snapshot-<id>` file per resource in
 * `<replicationDir>/<backend_id>/` (`default` is the primary), shared by every member like the
 * journal — driven by the file driver's own replication (`file-replication.ts`): the epoch
 * markers, the fence of every call, the copy to the replicas, failover and failback. Each journal
 * line names the backend and epoch, each successful end the replicas, and each promotion is a
 * `failover` line.
 */
import { type FileHandle, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, BackendUnavailableError, ClosedError, CoordinatorError, DriverError, InvalidInputError } from '../errors.js';
import { sleep } from '../lifecycle/clock.js';
import { formatJournalEntry, type JournalEntry } from './fake-journal.js';
import { FenceMarkers } from './fence-markers.js';
import { FakeReplication } from './fake-replication.js';
import { FileReplication, type ReplicaLayout } from './file-replication.js';
import type { ReplicationTarget } from './replication-targets.js';
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
  PRIMARY_BACKEND_ID,
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
  /** Simulated replication targets (`driver.fakeReplicationTargets`); their `location` only labels them. */
  readonly replicationTargets?: readonly ReplicationTarget[];
  /** Where the simulated backends live, shared by every member: `<journalPath>.replication` by default. */
  readonly replicationDir?: string;
}

/** What a call does to the simulated inventory of its backend. */
type InventoryChange = { readonly name: string; readonly change: 'write' | 'remove' };

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
  /** Present when targets are configured. */
  readonly replication?: FakeReplication;

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
    const targets = options.replicationTargets ?? [];
    const repDir = options.replicationDir ?? (options.journalPath ? `${options.journalPath}.replication` : undefined);
    if (targets.length > 0 && repDir !== undefined) {
      const dirOf = (id: string): string => join(repDir, id);
      const files = new FileReplication({
        driverName: 'fake',
        primaryDir: dirOf(PRIMARY_BACKEND_ID),
        targets: targets.map((t) => ({ backendId: t.backendId, location: dirOf(t.backendId) })),
        onServe: async (id) => {
          await mkdir(dirOf(id), { recursive: true });
        },
      });
      this.replication = new FakeReplication(files, (entry) => this.record(entry));
    }
  }

  /**
   * Opens the journal (if any) for appending and returns the driver. With replication, the
   * simulated backends' directories are made where they can be.
   *
   * @throws InvalidInputError for replication targets without a journal or `replicationDir`
   */
  static async open(options: FakeVolumeDriverOptions = {}): Promise<FakeVolumeDriver> {
    const targets = options.replicationTargets ?? [];
    const repDir = options.replicationDir ?? (options.journalPath ? `${options.journalPath}.replication` : undefined);
    if (targets.length > 0 && repDir === undefined) {
      throw new InvalidInputError('fake driver: replication targets need a journal (driver.fakeJournal), beside which the simulated backends are kept');
    }
    if (repDir !== undefined) {
      for (const id of [PRIMARY_BACKEND_ID, ...targets.map((t) => t.backendId)]) await mkdir(join(repDir, id), { recursive: true }).catch(() => undefined);
    }
    const journal = options.journalPath ? await open(options.journalPath, 'a', 0o600) : undefined;
    return new FakeVolumeDriver(options, journal);
  }

  async createVolume(volume: VolumeSpec, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    await this.perform('createVolume', `volume:${volume.id}`, ctx, undefined, { name: `volume-${volume.id}`, change: 'write' });
  }

  async deleteVolume(volume: VolumeRef, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    await this.perform('deleteVolume', `volume:${volume.id}`, ctx, undefined, { name: `volume-${volume.id}`, change: 'remove' });
  }

  async extendVolume(volume: VolumeRef, newSizeGiB: number, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(newSizeGiB);
    await this.perform('extendVolume', `volume:${volume.id}`, ctx, undefined, { name: `volume-${volume.id}`, change: 'write' });
  }

  async createClonedVolume(volume: VolumeSpec, source: VolumeRef, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    checkResourceId(source.id, 'volume');
    await this.perform('createClonedVolume', `volume:${volume.id}`, ctx, `volume:${source.id}`, { name: `volume-${volume.id}`, change: 'write' });
  }

  async createVolumeFromSnapshot(volume: VolumeSpec, snapshot: SnapshotRef, ctx: DriverContext): Promise<void> {
    checkResourceId(volume.id, 'volume');
    checkSizeGiB(volume.sizeGiB);
    checkResourceId(snapshot.id, 'snapshot');
    await this.perform('createVolumeFromSnapshot', `volume:${volume.id}`, ctx, `snapshot:${snapshot.id}`, { name: `volume-${volume.id}`, change: 'write' });
  }

  async createSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    checkResourceId(snapshot.id, 'snapshot');
    checkResourceId(snapshot.volumeId, 'volume');
    await this.perform('createSnapshot', `snapshot:${snapshot.id}`, ctx, undefined, { name: `snapshot-${snapshot.id}`, change: 'write' });
  }

  async deleteSnapshot(snapshot: SnapshotSpec, ctx: DriverContext): Promise<void> {
    checkResourceId(snapshot.id, 'snapshot');
    await this.perform('deleteSnapshot', `snapshot:${snapshot.id}`, ctx, undefined, { name: `snapshot-${snapshot.id}`, change: 'remove' });
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
    this.replication?.close();
    for (const end of this.hanging) end();
    await this.writes;
    await this.journal?.close();
    this.journal = undefined;
  }

  /**
   * One journaled call on `resource`; a copy also names the `source` it reads. With
   * replication: the epoch fence first (a refused call ends `ok: false` and changes nothing),
   * then `inventory` changed on the active backend and copied to the replicas.
   */
  private async perform(call: DriverCall, resource: string, ctx: DriverContext, source?: string, inventory?: InventoryChange): Promise<void> {
    if (this.closed) throw new ClosedError('fake volume driver');
    checkNotAborted(ctx, call);
    await this.fences?.refuseIfFenced(ctx.incarnation);
    const layout = this.replication?.layout();
    const where = layout === undefined ? {} : { backend: layout.backendId, epoch: ctx.epoch ?? 0 };
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
      ...where,
      ...extra,
      t: performance.timeOrigin + performance.now(),
    });
    await this.record(line('start'));
    let replicas: readonly string[] | undefined;
    try {
      if (layout !== undefined) await this.replication?.fenceCall(call, ctx, layout);
      if (this.options.hang?.includes(call)) await this.hang(ctx, call);
      if (this.latencyMs > 0) {
        await sleep(this.latencyMs, ctx.signal);
        // The end of the simulated work is a step boundary, as in a real driver of several steps:
        // a call overtaken meanwhile by a fence or a failover (a newer epoch marker) writes nothing.
        checkNotAborted(ctx, call);
        await this.fences?.refuseIfFenced(ctx.incarnation);
        if (layout !== undefined) await this.replication?.fenceCall(call, ctx, layout);
      }
      if (this.failureRate > 0 && this.random() < this.failureRate) {
        throw new DriverError(this.name, call, `injected failure on ${resource}`);
      }
      if (layout !== undefined && inventory !== undefined) replicas = await this.changeInventory(call, layout, inventory, ctx);
    } catch (err) {
      await this.record(line('end', { ok: false, error: err instanceof Error ? err.message : String(err) }));
      throw err;
    }
    await this.record(line('end', { ok: true, ...(replicas === undefined ? {} : { replicas }) }));
  }

  /** Changes the simulated inventory on the active backend and copies it to the replicas; returns their ids. */
  private async changeInventory(call: DriverCall, layout: ReplicaLayout, inventory: InventoryChange, ctx: DriverContext): Promise<readonly string[]> {
    const path = join(layout.activeDir, inventory.name);
    try {
      if (inventory.change === 'write') await writeFile(path, '');
      else await rm(path, { force: true });
    } catch (err) {
      if (err instanceof CoordinatorError) throw err;
      throw new DriverError(this.name, call, `backend ${layout.backendId} cannot be written: ${(err as Error).message}`, { cause: err, retryable: true });
    }
    await this.replication?.replicate(call, layout, [inventory.name], { signal: ctx.signal, checkpoint: () => checkNotAborted(ctx, call) });
    return layout.replicaIds;
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

