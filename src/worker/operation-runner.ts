/**
 * Runs one claimed op to its end: under its locks, one driver call, then ONE fenced write
 * that records the final status and removes the op.
 */
import { AbortedError, FencedError, IllegalStateError, isRetryable } from '../errors.js';
import { LockTimeoutError } from '../locks/lock-service.js';
import { allOf, type Fence, NO_FENCE } from '../fence.js';
import type { DriverContext, VolumeDriver } from '../drivers/volume-driver.js';
import type { Clock } from '../lifecycle/clock.js';
import { type Backoff, DEFAULT_ETCD_RETRY } from '../lifecycle/retry.js';
import { type HeldLocks, type LockContext, LockLostError } from '../locks/lock-service.js';
import type { Logger } from '../observability/logger.js';
import type { OpRecord, ResourceRecord, ResourceRef, SnapshotRecord, VolumeRecord } from '../state/records.js';
import type { StateStore } from '../state/state-store.js';
import type { Incarnation, Incarnations } from '../incarnation/incarnation.js';
import type { OperationResult, WorkerMetrics } from './metrics.js';
import { type Admission, refusedForCapacity } from './admission.js';
import { forceDeleteTimeoutWhy, type ForceDeleteHooks, isForceDelete } from './force-delete.js';
import type { OpPublisher } from './op-publisher.js';
import { attachmentOpParams, attachmentsOf } from '../state/attachments.js';
import { copyFromSource } from './copy.js';
import { type DriverOutcome, type DriverResult, finalWrite, type FinalWrite, isManagedKind, lockNamesFor, type ManagedKind, newSizeOf } from './plan.js';

/** How a run ended; `status` is the final status written (`deleted`: the record was removed). */
export interface OpOutcome {
  readonly result: OperationResult;
  readonly status?: string;
}

/** Options of {@link OperationRunner.run}. */
export interface RunOptions {
  /**
   * Aborting it stops the op and hands it back: the driver call is aborted, then one fenced
   * `updateOp` sets `owner: null` and the job is re-published, so another member takes it
   * (drain). Outcome `handed_back`.
   */
  readonly signal?: AbortSignal;
  /** Why it runs: a job from the queue, or a cleanup of an orphan (logged, nothing else). */
  readonly reason?: 'job' | 'cleanup';
  /**
   * The op's locks, taken before the claim (`tryLockAll`), and the resource as the claim read it
   * under them: the run uses both as they are — no lock request, no re-read — and releases the
   * locks when it ends. `record` absent: read it under the locks.
   */
  readonly held?: { readonly locks: HeldLocks; readonly record?: ResourceRecord | null };
}

/** What an {@link OperationRunner} needs. */
export interface OperationRunnerOptions {
  readonly store: StateStore;
  readonly driver: VolumeDriver;
  readonly incarnations: Incarnations;
  /** Re-publishes handed-back ops. */
  readonly publisher: Pick<OpPublisher, 'publish'>;
  readonly metrics: WorkerMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Waits between retries of a store or lock call that failed transiently (`retry.*`). */
  readonly retry?: Backoff;
  /** The capacity gate of creates and extends; absent: everything fits. */
  readonly admission?: Admission;
  /** What a force-delete does while it waits for the run it replaced; absent: force-deletes wait like any delete. */
  readonly forceDelete?: ForceDeleteHooks;
  /**
   * The cluster's backend epoch as this member serves it (worker/cluster-follower.ts): a run
   * takes it when it starts, passes it to every driver call and compares it in its final write,
   * so a run of an older epoch writes nothing after a failover. Absent: epoch 0, no compare.
   */
  readonly epoch?: EpochSource;
}

/** The backend epoch a run works under, and the fence that holds while it is still the cluster's. */
export interface EpochSource {
  current(): number;
  fence(epoch: number): Fence;
}

/** A run of one op, for logs and the helpers below. */
interface Run {
  readonly op: OpRecord & { readonly kind: ManagedKind; readonly owner: NonNullable<OpRecord['owner']> };
  readonly ref: ResourceRef;
  readonly inc: Incarnation;
  /** Caller's signal (drain) or the incarnation ending; made when first asked for. */
  readonly stop: AbortSignal;
  readonly handBack: AbortSignal;
  /** Aborted when this run is asked to stop (a force-delete replaced its op). */
  readonly abort: AbortSignal;
  /** The run's logger, made when first asked for: a run that goes well logs nothing at the default level. */
  readonly log: () => Logger;
  readonly held: RunOptions['held'];
  /** The backend epoch the run works under, and its fence (NO_FENCE without an epoch source). */
  readonly epoch: number;
  readonly epochFence: Fence;
}

const NEVER = new AbortController().signal;

/** What a final write made under no lock carries: no lock fence, nothing to release. */
const NO_LOCKS: Pick<LockContext, 'fence' | 'releasingFence' | 'releasedByWrite'> = { fence: NO_FENCE, releasingFence: NO_FENCE, releasedByWrite: () => undefined };

/**
 * Runs ops already claimed by the current incarnation (`op.owner` is it).
 *
 * ```ts
 * const claimed = await claimer.claimOp(op, member);
 * if (claimed.ok) outcome = await runner.run(claimed.op, { signal: drain.signal });
 * ```
 *
 * 1. Takes the op's locks (`lockNamesFor`: Cinder's names), waiting as long as it must.
 * 2. Re-reads the op and the resource under the locks: if the op is no longer this run's (an
 *    admin reset the status meanwhile) → `gone`, nothing written.
 * 3. Waits out a session `jeopardy` (no new side effect while a keepalive is missing), then calls
 *    the driver with `{ signal, member, opId }`; the signal aborts when a lock or the lease is
 *    lost, or when `options.signal` aborts.
 * 4. ONE write: the final status (Cinder's error status when the driver failed: create →
 *    `error`, delete → `error_deleting`, extend → `error_extending`, snapshot create → `error`,
 *    snapshot delete → `error_deleting`), `host` = this member, `updated_by` = this incarnation,
 *    the op removed (a successful delete removes the record). It expects the op unchanged
 *    (`opId`, `owner: me`) and carries the member fence and the lock fences.
 *
 * Failure semantics (never thrown; each is an outcome):
 * - driver error → the error status, outcome `error`;
 * - lost lease or lock mid-op (partition, paused process) → the driver call is aborted and
 *   nothing more is written (a write would be fenced off anyway): outcome `fenced`, logged and
 *   counted. The op stays owned by the dead incarnation: an orphan for cleanup (issue 7);
 * - `FencedError` on the final write (etcd expired the lease before we knew) → `fenced`, same;
 * - etcd unreachable (lock, read or final write) → retried with the `retry` waits while the
 *   incarnation lives; the final write is never re-sent blindly (the store reconciles, and a
 *   refused retry checks whether the first attempt landed);
 * - `options.signal` aborted → handed back (`handed_back`); if the hand-back itself is fenced → `fenced`;
 * - killed process → nothing: the op stays owned by a dead incarnation (an orphan).
 */
export class OperationRunner {
  private readonly retry: Backoff;
  /** Runs in flight, by the incarnation that owns them. */
  private readonly inFlight = new Map<string, Set<Promise<OpOutcome>>>();
  private readonly idle = new Map<string, Set<() => void>>();
  /** Runs in flight by op id, to abort one on request. */
  private readonly aborts = new Map<string, AbortController>();

  constructor(private readonly deps: OperationRunnerOptions) {
    this.retry = deps.retry ?? DEFAULT_ETCD_RETRY;
  }

  /**
   * Resolves once no run owned by `incarnation` is in flight in this process: every driver call
   * it made has returned. What an incarnation's fence by itself and its clean leave wait for.
   *
   * @throws AbortedError when `signal` aborts first.
   */
  settled(incarnation: string, signal: AbortSignal): Promise<void> {
    if (!this.inFlight.get(incarnation)?.size) return Promise.resolve();
    if (signal.aborted) return Promise.reject(new AbortedError(`runs of ${incarnation} to settle`, { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      const waiters = this.idle.get(incarnation) ?? new Set();
      this.idle.set(incarnation, waiters);
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        waiters.delete(done);
        reject(new AbortedError(`runs of ${incarnation} to settle`, { cause: signal.reason }));
      };
      waiters.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Aborts the run of `opId` in this process, if any: its driver call's signal fires (the
   * driver stops at its next step), it writes nothing more than its op allows — a force-delete
   * replaced the op, so its final write finds it gone — and it releases its locks once its call
   * returned. True when a run was found.
   */
  abort(opId: string, reason: string): boolean {
    const controller = this.aborts.get(opId);
    if (!controller) return false;
    controller.abort(new Error(reason));
    return true;
  }

  /**
   * Runs `op` to its final fenced transition. See the class doc.
   *
   * @throws IllegalStateError when `op` is not owned by this host (a caller's bug).
   */
  run(op: OpRecord, options: RunOptions = {}): Promise<OpOutcome> {
    const owner = op.owner?.incarnation ?? '';
    const run = this.runOnce(op, options);
    const runs = this.inFlight.get(owner) ?? new Set();
    this.inFlight.set(owner, runs);
    runs.add(run);
    const settle = (): void => {
      runs.delete(run);
      if (runs.size > 0) return;
      this.inFlight.delete(owner);
      const waiters = this.idle.get(owner);
      this.idle.delete(owner);
      for (const w of waiters ?? []) w();
    };
    run.then(settle, settle);
    return run;
  }

  private async runOnce(op: OpRecord, options: RunOptions): Promise<OpOutcome> {
    const owner = op.owner;
    const inc = this.deps.incarnations.current();
    if (!owner || (inc && owner.host !== inc.member.owner.host)) {
      throw new IllegalStateError('operation runner', owner ? `owned by ${owner.incarnation}` : 'queued', `op ${op.opId} is not claimed by this host`);
    }
    if (!isManagedKind(op.kind)) throw new IllegalStateError('operation runner', op.kind, `the volume manager does not run ${op.kind as string}`);
    let child: Logger | undefined;
    const log = (): Logger => (child ??= this.deps.logger.child({ opId: op.opId, kind: op.kind, resource: `${op.type}:${op.id}`, attempt: op.attempt, reason: options.reason ?? 'job' }));
    const done = this.deps.metrics.started(op.kind, () => this.deps.clock.now());
    if (this.deps.logger.isLevelEnabled('debug')) log().debug('operation started');
    let outcome: OpOutcome;
    if (!inc || inc.member.owner.incarnation !== owner.incarnation) {
      outcome = fenced(log(), 'the incarnation that claimed the op has ended');
    } else {
      const handBack = options.signal ?? NEVER;
      const abort = new AbortController();
      this.aborts.set(op.opId, abort);
      let stop: AbortSignal | undefined;
      const epoch = this.deps.epoch?.current() ?? 0;
      const run: Run = {
        epoch,
        epochFence: this.deps.epoch?.fence(epoch) ?? NO_FENCE,
        op: { ...op, kind: op.kind, owner },
        ref: { type: op.type, id: op.id },
        inc,
        handBack,
        abort: abort.signal,
        get stop() {
          return (stop ??= AbortSignal.any([handBack, abort.signal, inc.member.signal]));
        },
        log,
        held: options.held,
      };
      try {
        outcome = await this.underLocks(run);
      } catch (err) {
        // Only a bug gets here; the op stays owned by this incarnation (an orphan once it ends).
        log().error({ err }, 'the operation runner failed; the op stays owned by this incarnation');
        outcome = { result: 'error' };
      } finally {
        if (this.aborts.get(op.opId) === abort) this.aborts.delete(op.opId);
        this.deps.admission?.finished(op.opId);
      }
    }
    done(outcome.result);
    // Every run is counted (hearth_operations_total) and logged, as an operator reading one volume's history expects.
    log().info({ result: outcome.result, status: outcome.status }, 'operation ended');
    return outcome;
  }

  /** Takes the locks (retrying transient failures) and runs the op under them. */
  private async underLocks(run: Run): Promise<OpOutcome> {
    const force = this.deps.forceDelete && isForceDelete(run.op) ? this.deps.forceDelete : undefined;
    // Asked again even when the claim took the locks already (a notice may have been missed).
    if (force) await force.abortReplaced(run.op);
    if (run.held) {
      const { locks, record } = run.held;
      try {
        return await this.locked(run, locks, record);
      } catch (err) {
        if (!run.inc.member.joined) return fenced(run.log(), 'lost the lease before the operation ended', err);
        if (run.handBack.aborted || run.abort.aborted) return this.handBack(run, NO_FENCE);
        if (!isRetryable(err)) throw err;
        run.log().warn({ err }, 'could not read the op under the locks it was claimed with; retrying under fresh locks');
      } finally {
        await locks.release();
      }
    }
    const deadline = force ? this.deps.clock.now() + force.waitMs : Infinity;
    for (let attempt = 1; ; attempt++) {
      try {
        const names = await this.lockNames(run);
        const timeoutMs = Math.max(0, deadline - this.deps.clock.now());
        return await run.inc.locks.withLock(names, (ctx) => this.locked(run, ctx), { signal: run.stop, timeoutMs });
      } catch (err) {
        if (!run.inc.member.joined) return fenced(run.log(), 'lost the lease before the operation ended', err);
        if (run.handBack.aborted || run.abort.aborted) return this.handBack(run, NO_FENCE);
        if (force && err instanceof LockTimeoutError) return this.forceTimedOut(run, force, err);
        if (!isRetryable(err)) throw err;
        run.log().warn({ err, attempt }, 'could not take the locks or read the op; retrying');
        await this.pause(attempt, run.stop);
      }
    }
  }

  private async lockNames(run: Run): Promise<string[]> {
    const { op } = run;
    let volumeId = typeof op.params.volumeId === 'string' ? op.params.volumeId : undefined;
    if (op.kind === 'create_snapshot' && !volumeId) volumeId = (await this.deps.store.get({ type: 'snapshot', id: op.id }))?.volume_id;
    return lockNamesFor(op.kind, op.id, volumeId);
  }

  /**
   * Under the locks: re-reads the op and the resource — unless `known`, the resource as the claim
   * read it under these very locks (the op is then the claimed one) — then the driver call and
   * the final write.
   */
  private async locked(run: Run, ctx: LockContext, known?: ResourceRecord | null): Promise<OpOutcome> {
    const { op, ref, inc, log } = run;
    const [current, record] = known !== undefined ? [op, known ?? undefined] : await Promise.all([this.deps.store.getOp(ref), this.deps.store.get(ref)]);
    if (!current || current.opId !== op.opId || current.owner?.incarnation !== op.owner.incarnation) {
      log().warn({ now: current && { opId: current.opId, owner: current.owner?.incarnation ?? null } }, 'the op changed while it waited for its locks; nothing to do');
      return { result: 'gone' };
    }
    if (!record || record.status !== op.status) {
      log().warn({ status: record?.status }, 'the resource left the op\'s status; nothing to do');
      return { result: 'gone' };
    }
    const stillHeld = (): boolean => inc.member.joined && ctx.handles.every((h) => h.state === 'held' || h.state === 'jeopardy');
    if (this.deps.admission && (await refusedForCapacity(this.deps.admission, run.op, record, log()))) return this.finish(run, record, ctx, 'refused');
    const { signal, dispose } = driverSignal(run, ctx);
    let outcome: DriverOutcome = 'success';
    let result: DriverResult = {};
    try {
      await this.untilSafe(ctx, signal);
      result = await this.callDriver(op, record, { signal, member: inc.member.owner.host, opId: op.opId, incarnation: inc.member.owner.incarnation, stillHeld, epoch: run.epoch });
    } catch (err) {
      if (signal.aborted || err instanceof AbortedError) {
        if (!stillHeld()) return fenced(log(), 'lost the lease or a lock mid-operation; aborted, left for orphan cleanup', err);
        if (run.handBack.aborted) return this.handBack(run, ctx.fence);
        if (run.abort.aborted) log().warn({ err, reason: String(run.abort.reason) }, 'the driver call was aborted on request');
      }
      if (!run.abort.aborted) log().warn({ err }, 'the driver call failed');
      outcome = 'error';
    } finally {
      dispose();
    }
    return this.finish(run, record, ctx, outcome, result);
  }

  /** A force-delete that found no proof the replaced run stopped: error_deleting, and why. */
  private async forceTimedOut(run: Run, force: ForceDeleteHooks, err: LockTimeoutError): Promise<OpOutcome> {
    const record = await this.deps.store.get(run.ref);
    if (!record || record.status !== run.op.status) return { result: 'gone' };
    const why = forceDeleteTimeoutWhy(run.op, force.waitMs, err);
    run.log().warn({ lock: err.lockName, holder: err.holder, waitMs: force.waitMs }, 'force-delete: the replaced run did not stop in time; error_deleting');
    await force.timedOut(run.op, record, why);
    // No lock is held: the write is fenced by this member alone, and expects the op unchanged.
    return this.finish(run, record, NO_LOCKS, 'error');
  }

  /** No new side effect while a keepalive is missing: wait until the locks are `held` again. */
  private async untilSafe(ctx: LockContext, signal: AbortSignal): Promise<void> {
    while (ctx.handles.some((h) => h.state === 'jeopardy')) await this.deps.clock.sleep(100, signal);
    if (signal.aborted) throw new AbortedError('waiting for a safe session', { cause: signal.reason });
  }

  private async callDriver(op: Run['op'], record: ResourceRecord, ctx: DriverContext): Promise<DriverResult> {
    const { driver } = this.deps;
    switch (op.kind) {
      case 'create_volume':
        await driver.createVolume({ id: op.id, sizeGiB: (record as VolumeRecord).size }, ctx);
        return {};
      case 'delete_volume':
        await driver.deleteVolume({ id: op.id }, ctx);
        return {};
      case 'extend_volume':
        await driver.extendVolume({ id: op.id }, newSizeOf(op), ctx);
        return {};
      case 'create_snapshot':
        await driver.createSnapshot({ id: op.id, volumeId: (record as SnapshotRecord).volume_id }, ctx);
        return {};
      case 'delete_snapshot':
        await driver.deleteSnapshot({ id: op.id, volumeId: (record as SnapshotRecord).volume_id }, ctx);
        return {};
      case 'clone_volume':
      case 'create_volume_from_snapshot':
        await copyFromSource(driver, op, record as VolumeRecord, ctx);
        return {};
      case 'attach_volume': {
        const params = attachmentOpParams(op.params);
        if (!driver.initializeConnection) throw new Error(`the ${driver.name} driver cannot attach volumes`);
        const info = await driver.initializeConnection({ id: op.id }, params.connector ?? {}, ctx);
        return { connectionInfo: { ...info }, at: this.deps.clock.now() };
      }
      case 'detach_volume': {
        const params = attachmentOpParams(op.params);
        const attachment = attachmentsOf(record as VolumeRecord).find((a) => a.id === params.attachmentId);
        await driver.terminateConnection?.({ id: op.id }, attachment?.connector ?? params.connector ?? null, ctx);
        return {};
      }
    }
  }

  /**
   * The one final write, fenced by the member and the locks, which it also releases (their keys go
   * in the same transaction: `releasingFence`); retried only while they hold.
   */
  private async finish(run: Run, record: ResourceRecord, ctx: Pick<LockContext, 'fence' | 'releasingFence' | 'releasedByWrite'>, outcome: DriverOutcome, result: DriverResult = {}): Promise<OpOutcome> {
    const { op, ref, inc, log } = run;
    const write = finalWrite(op, record, outcome, inc.member.owner.host, result);
    // The backend epoch rides in the same write: a failover since makes it fail (docs/membership.md).
    const fence = allOf(inc.member.fence(), ctx.releasingFence, run.epochFence);
    const expectOp = { opId: op.opId, owner: op.owner.incarnation };
    const done = (): OpOutcome => {
      ctx.releasedByWrite();
      return { result: outcome, status: write.status };
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const result =
          write.type === 'remove'
            ? await this.deps.store.remove(ref, { expect: { status: op.status }, expectOp, by: 'worker', fence })
            : // The store checks the fields against the record type; the plan sets only common ones.
              await this.deps.store.transition(ref as { type: 'volume'; id: string }, {
                expect: { status: op.status },
                expectOp,
                // The writer names itself, so etcd's history shows who wrote each final status.
                set: { ...write.set, updated_by: inc.member.owner.incarnation },
                op: 'remove',
                by: 'worker',
                fence,
              });
        if (result.ok || (attempt > 1 && (await this.landed(ref, write)))) return done();
        log().warn({ failed: result.failed }, 'the op changed before its final write (an admin reset?); nothing written');
        return { result: 'gone' };
      } catch (err) {
        // An earlier attempt whose answer was lost may have landed — and released the locks with it.
        if (err instanceof FencedError) {
          if (attempt > 1 && (await this.landed(ref, write).catch(() => false))) return done();
          if (failedOnEpoch(err, run.epochFence)) {
            // A failover raised the epoch: whatever the driver did was at the old backend. The op
            // goes back to the queue and runs again at the new epoch, on the backend now served.
            log().warn({ epoch: run.epoch }, 'the backend epoch changed (a failover) before the final write; handing the op back to run at the new epoch');
            return this.handBack(run, ctx.fence);
          }
          return fenced(log(), 'the final write was fenced off', err);
        }
        if (!isRetryable(err)) throw err;
        if (!fence.holds()) return fenced(log(), 'lost the lease or a lock before the final write landed', err);
        log().warn({ err, attempt }, 'the final write failed; retrying');
        // Not aborted by a drain: the driver work is done, only its record is missing.
        await this.pause(attempt, inc.member.signal);
      }
    }
  }

  /** After an answer was lost: did the earlier attempt of `write` land? */
  private async landed(ref: ResourceRef, write: FinalWrite): Promise<boolean> {
    const record = await this.deps.store.get(ref);
    if (write.type === 'remove') return record === undefined;
    return record?.status === write.status && (await this.deps.store.getOp(ref)) === undefined;
  }

  /** Releases the op (owner none) and re-publishes it for another member. */
  private async handBack(run: Run, lockFence: Fence): Promise<OpOutcome> {
    const { op, ref, inc, log } = run;
    const fence = allOf(inc.member.fence(), lockFence);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.deps.store.updateOp(ref, { expect: { opId: op.opId, owner: op.owner.incarnation }, set: { owner: null, publishedAt: null }, fence });
        if (!result.ok) {
          log().warn({ failed: result.failed }, 'the op changed before it could be handed back');
          return { result: 'gone' };
        }
        log().info('handed the op back for another member');
        await this.deps.publisher.publish(result.op);
        return { result: 'handed_back' };
      } catch (err) {
        if (err instanceof FencedError) return fenced(log(), 'the hand-back was fenced off', err);
        if (!isRetryable(err)) throw err;
        if (!fence.holds()) return fenced(log(), 'lost the lease before the op could be handed back', err);
        log().warn({ err, attempt }, 'handing the op back failed; retrying');
        await this.pause(attempt, inc.member.signal);
      }
    }
  }

  private async pause(failures: number, signal: AbortSignal): Promise<void> {
    await this.retry.wait(failures, this.deps.clock, signal);
  }
}

/** True when a fenced write failed on the backend epoch (etcd names the guard; a single node asks the predicate). */
function failedOnEpoch(err: FencedError, epochFence: Fence): boolean {
  if (epochFence === NO_FENCE) return false;
  return epochFence.guards.some((g) => err.guard.startsWith(g.key)) || (err.guard === 'holds()' && !epochFence.holds());
}

/**
 * The signal of a run's driver call: it aborts on a hand-back (drain), on a request to abort the
 * run (a force-delete replaced its op), when the incarnation ends and when any of the locks is lost. One controller and a few listeners, unhooked by `dispose`
 * — not `AbortSignal.any` chains over the locks' own signals, which every run would build and a
 * released lock would abort with an error object of its own.
 */
function driverSignal(run: Run, ctx: LockContext): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const sources = run.handBack === NEVER ? [run.abort, run.inc.member.signal] : [run.handBack, run.abort, run.inc.member.signal];
  const onAbort = (event: Event): void => abort((event.target as AbortSignal).reason);
  const offs = ctx.handles.map((h) => h.onStateChange((change) => change.state === 'lost' && abort(new LockLostError(h.name, `lock ${h.name} lost mid-operation`))));
  const dispose = (): void => {
    for (const s of sources) s.removeEventListener('abort', onAbort);
    for (const off of offs) off();
  };
  function abort(reason: unknown): void {
    dispose();
    controller.abort(reason);
  }
  for (const s of sources) {
    if (s.aborted) {
      abort(s.reason);
      break;
    }
    s.addEventListener('abort', onAbort, { once: true });
  }
  const lost = ctx.handles.find((h) => h.state === 'lost');
  if (lost && !controller.signal.aborted) abort(new LockLostError(lost.name, `lock ${lost.name} lost mid-operation`));
  return { signal: controller.signal, dispose };
}

function fenced(log: Logger, why: string, err?: unknown): OpOutcome {
  log.warn({ err }, `${why}; writing nothing more`);
  return { result: 'fenced' };
}
