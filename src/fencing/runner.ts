import { FencedError } from '../errors.js';
import { allOf } from '../fence.js';
import type { Incarnations } from '../incarnation/incarnation.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { IncarnationView } from '../membership/incarnation-records.js';
import type { Member, Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { FenceOp, FenceQueue } from './fence-queue.js';
import type { FenceMethod, FenceOutcome, FenceTarget } from './method.js';
import type { FenceMetrics } from './metrics.js';
import { planFence } from './plan.js';

/** Whom to fence, as the caller knows it. */
export interface DeadIncarnation {
  readonly incarnation: string;
  readonly host: string;
  readonly cluster: string;
}

/** What a {@link FenceRunner} is built from. */
export interface FenceRunnerOptions {
  readonly queue: FenceQueue;
  readonly membership: Pick<Membership, 'incarnation' | 'recordEnd' | 'ownerGone' | 'watch'>;
  readonly incarnations: Incarnations;
  /** `local`: tried first when the dead process ran on this machine (process-gone); `external`: the configured method. */
  readonly methods: { readonly local?: FenceMethod; readonly external: FenceMethod };
  /** The driver's per-incarnation fence (e.g. a marker on the shared directory), run before the fence is recorded. */
  readonly fenceDriver?: (incarnation: string) => Promise<void>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: FenceMetrics;
  readonly selfFenceGraceMs: number;
  /** Waits between attempts of a fence that failed. */
  readonly retry: Backoff;
  /** How often pending fences are looked at even when nothing happened. */
  readonly sweepIntervalMs: number;
  /** Fences run at once. */
  readonly concurrency?: number;
}

/**
 * Runs the fences of dead incarnations, on every worker: it hears of deaths (a member leaving,
 * seen live on the membership watch; an orphan or a lock whose owner died without an end
 * record), asks for a fence operation, and runs every pending one it can claim: the local
 * process check, then the configured method; once one succeeds, the driver's fence and then the
 * end record (`recordEnd`), which is what takeovers and lock hand-offs wait for.
 *
 * Failure semantics: a method that fails is retried with the `retry` waits, its reason recorded
 * on the fence operation (the operator sees it) and counted; the incarnation's work and locks
 * stay untouched meanwhile. A runner that dies mid-fence leaves its operation to be taken over
 * (the claim proves it dead). etcd unreachable: the loop retries on its sweep.
 */
export class FenceRunner {
  private readonly stop = new AbortController();
  private readonly running = new Set<string>();
  /**
   * Consecutive failed attempts of the fences this runner keeps: a runner that holds an
   * operation retries it without claiming it again, so the operation's claim count alone would
   * keep the back-off at its first step.
   */
  private readonly failures = new Map<string, number>();
  private wake: (() => void) | undefined;
  private loops: Promise<unknown> | undefined;

  constructor(private readonly options: FenceRunnerOptions) {}

  start(): void {
    this.loops ??= Promise.all([this.sweepLoop(), this.watchLoop()]);
  }

  /**
   * Asks for a fence of `dead` (idempotent). `observedLive`: a live member of this cluster saw
   * it die as it happened; otherwise the process may live on and fence its earlier incarnation
   * itself, so the outside fence waits `selfFenceGraceMs` first.
   */
  async need(dead: DeadIncarnation, observedLive = false, diedAtMs = this.options.clock.now()): Promise<void> {
    try {
      const view = await this.options.membership.incarnation(dead.incarnation);
      if (view.end || view.alive) return;
      await this.options.queue.request({ ...dead, diedAtMs, observedLive });
      this.kick();
    } catch (err) {
      this.options.logger.warn({ err, incarnation: dead.incarnation }, 'could not ask for a fence; the next sweep asks again');
    }
  }

  /** Stops the loops; fences in flight end at their next step. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    this.wake?.();
    await this.loops;
  }

  private kick(): void {
    this.wake?.();
  }

  private async watchLoop(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      try {
        for await (const event of this.options.membership.watch(signal)) {
          if (event.type !== 'member-left') continue;
          const me = this.options.incarnations.current()?.member;
          if (!me || event.member.incarnation === me.owner.incarnation) continue;
          // Seen live only if this incarnation joined before the death (it was connected throughout).
          const live = BigInt(event.revision) > BigInt(me.owner.aliveRevision);
          void this.need({ incarnation: event.member.incarnation, host: event.member.host, cluster: event.member.cluster }, live);
        }
      } catch (err) {
        if (!signal.aborted) this.options.logger.warn({ err }, 'fence runner: membership watch failed; watching again');
      }
      await this.options.clock.sleep(this.options.sweepIntervalMs, signal).catch(() => undefined);
    }
  }

  private async sweepLoop(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      let nextMs = this.options.sweepIntervalMs;
      try {
        nextMs = await this.sweep();
      } catch (err) {
        this.options.logger.warn({ err }, 'fence sweep failed; trying again');
      }
      await new Promise<void>((resolve) => {
        const timer = new AbortController();
        this.wake = () => timer.abort();
        this.options.clock.sleep(Math.max(10, Math.min(nextMs, this.options.sweepIntervalMs)), AbortSignal.any([timer.signal, signal])).then(resolve, () => resolve());
      });
    }
  }

  /** Looks at every pending fence once; returns how long until the next one is due. */
  private async sweep(): Promise<number> {
    const ops = await this.options.queue.list();
    this.options.metrics.awaiting.set(ops.length);
    const me = this.options.incarnations.current()?.member;
    const now = this.options.clock.now();
    let next = this.options.sweepIntervalMs;
    const due = ops.filter((op) => {
      if (this.running.has(op.incarnation)) return false;
      if (op.nextAttemptAtMs > now) {
        next = Math.min(next, op.nextAttemptAtMs - now);
        return false;
      }
      return true;
    });
    if (!me) return next;
    const width = this.options.concurrency ?? 4;
    for (const op of due.slice(0, width)) void this.attempt(op, me);
    return due.length > width ? 10 : next;
  }

  /** Claims `op` (unless another live member runs it) and makes one attempt. */
  private async attempt(op: FenceOp, me: Member): Promise<void> {
    this.running.add(op.incarnation);
    try {
      let claimed = op;
      if (op.owner?.incarnation !== me.owner.incarnation) {
        const fence = op.owner ? allOf(me.fence(), this.options.membership.ownerGone(op.owner)) : me.fence();
        const result = await this.options.queue.claim(op, me, fence).catch((err: unknown) => {
          if (err instanceof FencedError) return undefined; // its runner lives, or I do not
          throw err;
        });
        if (!result?.ok) return;
        claimed = result.op;
      }
      await this.run(claimed, me);
    } catch (err) {
      this.options.logger.warn({ err, incarnation: op.incarnation }, 'fence attempt failed');
    } finally {
      this.running.delete(op.incarnation);
    }
  }

  private async run(op: FenceOp, me: Member): Promise<void> {
    const view = await this.options.membership.incarnation(op.incarnation);
    const now = this.options.clock.now();
    const plan = planFence(op, view, now, this.options.selfFenceGraceMs);
    if (plan.type === 'done') {
      this.failures.delete(op.incarnation);
      await this.options.queue.remove(op.incarnation);
      return;
    }
    if (plan.type === 'wait') {
      await this.options.queue.failed(op, me, plan.reason, now + plan.waitMs);
      this.kick();
      return;
    }
    const target = targetOf(op, view);
    const { method, outcome } = await this.fence(target);
    if (!outcome.fenced) {
      this.options.metrics.failed(method.name);
      const failures = (this.failures.get(op.incarnation) ?? 0) + 1;
      this.failures.set(op.incarnation, failures);
      const waitMs = outcome.retryAfterMs ?? this.options.retry.delayMs(Math.max(failures, op.attempt));
      this.options.logger.warn({ incarnation: op.incarnation, method: method.name, reason: outcome.reason, retryInMs: waitMs }, 'could not fence a dead incarnation yet; its work and locks wait');
      await this.options.queue.failed(op, me, `${method.name}: ${outcome.reason}`, this.options.clock.now() + waitMs);
      this.kick();
      return;
    }
    this.failures.delete(op.incarnation);
    await this.options.fenceDriver?.(op.incarnation);
    const end = { incarnation: op.incarnation, host: op.host, how: method.name, by: me.owner.incarnation, atMs: this.options.clock.now(), detail: outcome.detail };
    const recorded = await this.options.membership.recordEnd(end, me.fence());
    if (!recorded.ok) {
      await this.options.queue.remove(op.incarnation); // alive after all: nothing to fence
      return;
    }
    await this.options.queue.remove(op.incarnation);
    if (recorded.created) {
      this.options.metrics.fenced(method.name, end.atMs - op.diedAtMs);
      this.options.logger.info({ incarnation: op.incarnation, host: op.host, how: method.name, detail: outcome.detail, sinceDeathMs: end.atMs - op.diedAtMs }, 'fenced a dead incarnation');
    }
  }

  /** The local check first (when the process ran here), then the configured method. */
  private async fence(target: FenceTarget): Promise<{ method: FenceMethod; outcome: FenceOutcome }> {
    const signal = this.stop.signal;
    const { local, external } = this.options.methods;
    if (local) {
      const outcome = await local.fence(target, signal);
      if (outcome.fenced) return { method: local, outcome };
    }
    return { method: external, outcome: await external.fence(target, signal) };
  }
}

function targetOf(op: FenceOp, view: IncarnationView): FenceTarget {
  return { incarnation: op.incarnation, host: op.host, cluster: op.cluster, process: view.record?.process ?? undefined, diedAtMs: op.diedAtMs };
}
