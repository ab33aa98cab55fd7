/**
 * The fake driver's replication: the file driver's own (`file-replication.ts`) working on the
 * fake's simulated inventory, with each promotion journaled as a `failover` call (start and end
 * lines on `backend:<id>`, naming the backend and the epoch).
 */
import { type JournalEntry } from './fake-journal.js';
import type { ReplicaCopyOptions } from './file-replica-sync.js';
import type { FileReplication, ReplicaLayout } from './file-replication.js';
import type { DriverCall, DriverContext, DriverReplication, ReplicationState } from './volume-driver.js';

/** Call numbers of promotions; they share the journal with the driver's calls, so they count down from -1 (never colliding). */
let lastSeq = 0;

/** See the module doc. */
export class FakeReplication implements DriverReplication {
  readonly targetIds: readonly string[];

  constructor(
    private readonly files: FileReplication,
    private readonly record: (entry: JournalEntry) => Promise<void>,
  ) {
    this.targetIds = files.targetIds;
  }

  state(): ReplicationState {
    return this.files.state();
  }

  async failover(backendId: string, epoch: number, ctx: DriverContext): Promise<void> {
    this.files.dirOf(backendId);
    const seq = --lastSeq;
    const line = (event: 'start' | 'end', extra: Partial<JournalEntry> = {}): JournalEntry => ({
      call: 'failover',
      resource: `backend:${backendId}`,
      opId: ctx.opId,
      member: ctx.member,
      pid: process.pid,
      seq,
      event,
      backend: backendId,
      epoch,
      ...extra,
      t: performance.timeOrigin + performance.now(),
    });
    await this.record(line('start'));
    try {
      await this.files.failover(backendId, epoch, ctx);
    } catch (err) {
      await this.record(line('end', { ok: false, error: err instanceof Error ? err.message : String(err) }));
      throw err;
    }
    await this.record(line('end', { ok: true }));
  }

  serve(backendId: string, epoch: number): Promise<void> {
    return this.files.serve(backendId, epoch);
  }

  /** See {@link FileReplication.layout}. */
  layout(): ReplicaLayout {
    return this.files.layout();
  }

  /** See {@link FileReplication.fenceCall}. */
  fenceCall(call: DriverCall, ctx: DriverContext, layout: ReplicaLayout): Promise<void> {
    return this.files.fenceCall(call, ctx, layout);
  }

  /** See {@link FileReplication.replicate}. */
  replicate(call: DriverCall, layout: ReplicaLayout, names: readonly string[], copy: ReplicaCopyOptions): Promise<void> {
    return this.files.replicate(call, layout, names, copy);
  }

  /** The driver closed: `disabled`. */
  close(): void {
    this.files.close();
  }
}
