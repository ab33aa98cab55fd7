/**
 * The worker's lifecycle: start-up hooks, then consuming; pause while the session is lost and
 * resume as the next incarnation; drain on shutdown.
 */
import type { OwnerRef } from '../identity.js';
import type { Logger } from '../observability/logger.js';
import type { JobBus, JobHandler, JobSubscription } from '../routing/job-bus.js';
import type { Incarnation, IncarnationEvent, Incarnations, StartReason } from '../incarnation/incarnation.js';
import { dispatcher, type MessageHandlers } from './message-dispatch.js';
import type { RepublishSweeper } from './sweeper.js';
import type { DrainSummary, VolumeManager } from './volume-manager.js';

/** What a start-up hook is told. */
export interface BeforeConsumeContext {
  /** The incarnation about to consume. */
  readonly incarnation: Incarnation;
  /** The incarnation of this process that ended just before (none at the first start). */
  readonly previous: OwnerRef | undefined;
  readonly reason: StartReason;
  /** Aborts when this incarnation ends or the worker drains. */
  readonly signal: AbortSignal;
}

/**
 * Runs after the worker joined (or rejoined as a new incarnation) and before it consumes any
 * message — Cinder's `init_host` cleanup of the host's own earlier incarnations goes here. A
 * hook that throws is logged; the worker consumes anyway (work must not stop because a cleanup
 * failed; its orphans stay visible).
 */
export type BeforeConsumeHook = (ctx: BeforeConsumeContext) => Promise<void>;

/**
 * `idle` → `starting` (hooks) → `consuming` ⇄ `paused` (no live incarnation) → `draining` →
 * `stopped`; `consuming` ⇄ `holding` while the backend is down (joined, not consuming).
 */
export type WorkerState = 'idle' | 'starting' | 'consuming' | 'holding' | 'paused' | 'draining' | 'stopped';

/**
 * Whether the storage backend can take work (`backend/backend-monitor.ts`): while it cannot,
 * the worker consumes nothing — its membership and lease stay — and it resumes by itself.
 */
export interface BackendGate {
  readonly up: boolean;
  /** Why not, for the log (default: the backend is down). */
  readonly reason?: string;
  /** Calls `listener` when `up` may have changed; returns a function that unsubscribes. */
  onChange(listener: () => void): () => void;
}

/** What a {@link Worker} needs. */
export interface WorkerOptions {
  readonly bus: Pick<JobBus, 'consume' | 'distributed'>;
  readonly incarnations: Incarnations;
  readonly manager: Pick<VolumeManager, 'handle' | 'stopTaking' | 'drain' | 'inFlight'>;
  readonly sweeper: Pick<RepublishSweeper, 'start' | 'sweep' | 'close'>;
  readonly logger: Logger;
  readonly beforeConsume?: readonly BeforeConsumeHook[];
  /** Handlers of message types other than `job` (which is the manager's). */
  readonly extraHandlers?: MessageHandlers;
  /** Consume only while the backend is up; absent: always. */
  readonly backend?: BackendGate;
}

/**
 * See the module doc and `docs/worker.md`.
 *
 * Failure semantics:
 * - broker disconnected: the bus re-attaches the subscription by itself; `/readyz` fails on the
 *   bus meanwhile and no work arrives; membership is untouched;
 * - session lost (partition, etcd down): consumption stops (`paused`); runs in progress abort
 *   on the member's signal and write nothing (`fenced`); when the supervisor starts the next
 *   incarnation the hooks run again (with `previous`), then consumption resumes;
 * - drain: see {@link drain}.
 */
export class Worker {
  private stateValue: WorkerState = 'idle';
  private subscription: JobSubscription | undefined;
  private unsubscribe: (() => void) | undefined;
  private unsubscribeBackend: (() => void) | undefined;
  private chain: Promise<void> = Promise.resolve();
  private hooks: AbortController | undefined;
  private readonly handler: JobHandler;

  constructor(private readonly options: WorkerOptions) {
    this.handler = dispatcher({ ...options.extraHandlers, job: options.manager.handle }, options.logger);
  }

  get state(): WorkerState {
    return this.stateValue;
  }

  /** True while consuming (for `/readyz`). */
  get ready(): boolean {
    return this.stateValue === 'consuming';
  }

  /**
   * Runs the start-up hooks for the current incarnation, then (single node) re-publishes every
   * queued op — the in-process queue did not survive the last run — and starts consuming and
   * sweeping.
   *
   * @throws Error when no incarnation is live (join first).
   */
  async start(): Promise<void> {
    const inc = this.options.incarnations.current();
    if (!inc) throw new Error('the worker needs a live incarnation: join the cluster first');
    this.unsubscribe = this.options.incarnations.subscribe((change) => this.onChange(change));
    this.unsubscribeBackend = this.options.backend?.onChange(() => void this.enqueue(() => this.followBackend()));
    await this.enqueue(async () => {
      await this.begin(inc, undefined, 'start');
      if (!this.options.bus.distributed && this.stateValue === 'consuming') await this.options.sweeper.sweep({ all: true });
    });
    this.options.sweeper.start();
  }

  /**
   * Graceful drain: stop consuming (deliveries not claimed are requeued for other members),
   * let runs finish for up to `graceMs`, then abort the rest, which hand their ops back (owner
   * none, re-published) so another member takes them at once. Locks are released as runs end.
   * Idempotent; resolves when no run is left.
   */
  async drain(graceMs: number): Promise<DrainSummary> {
    this.stateValue = 'draining';
    this.unsubscribe?.();
    this.unsubscribeBackend?.();
    this.hooks?.abort();
    this.options.manager.stopTaking();
    await this.options.sweeper.close();
    await this.chain;
    this.stateValue = 'draining';
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.cancel();
    const summary = await this.options.manager.drain(graceMs);
    await subscription?.idle({ signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    this.stateValue = 'stopped';
    this.options.logger.info({ ...summary }, 'worker drained');
    return summary;
  }

  private onChange(change: IncarnationEvent): void {
    if (change.type === 'ended') {
      if (change.reason === 'left') return;
      this.hooks?.abort();
      void this.enqueue(() => this.pause(change.owner));
      return;
    }
    if (change.reason === 'start') return;
    void this.enqueue(() => this.begin(change.incarnation, change.previous, change.reason));
  }

  /** Runs `step` after the steps before it; failures are logged, never thrown to the caller. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step).catch((err: unknown) => this.options.logger.error({ err }, 'worker lifecycle step failed'));
    return this.chain;
  }

  private async begin(inc: Incarnation, previous: OwnerRef | undefined, reason: StartReason): Promise<void> {
    if (this.draining) return;
    this.stateValue = 'starting';
    const hooks = new AbortController();
    this.hooks = hooks;
    const signal = AbortSignal.any([hooks.signal, inc.member.signal]);
    for (const [i, hook] of (this.options.beforeConsume ?? []).entries()) {
      if (signal.aborted) break;
      try {
        await hook({ incarnation: inc, previous, reason, signal });
      } catch (err) {
        this.options.logger.error({ err, hook: i, owner: inc.member.owner.incarnation }, 'a start-up hook failed; consuming anyway');
      }
    }
    if (this.draining || !inc.member.joined) return;
    if (this.options.backend && !this.options.backend.up) {
      this.stateValue = 'holding';
      this.options.logger.warn({ owner: inc.member.owner.incarnation, reason, why: this.options.backend.reason ?? 'the backend is down' }, 'joined, but not consuming until the backend can take work');
      return;
    }
    this.subscription = await this.options.bus.consume(this.handler);
    this.stateValue = 'consuming';
    this.options.logger.info({ owner: inc.member.owner.incarnation, reason }, 'consuming jobs');
  }

  /** Stops consuming while the backend is down and starts again once it is up; the membership stays. */
  private async followBackend(): Promise<void> {
    const up = this.options.backend?.up ?? true;
    if (!up && this.stateValue === 'consuming') {
      this.stateValue = 'holding';
      const subscription = this.subscription;
      this.subscription = undefined;
      // Deliveries not claimed yet go back to the queue (the manager's gate answers requeue); runs finish.
      await subscription?.cancel();
      this.options.logger.warn({ why: this.options.backend?.reason ?? 'the backend is down' }, 'stopped consuming until the backend can take work');
    } else if (up && this.stateValue === 'holding' && this.options.incarnations.current()?.member.joined) {
      this.subscription = await this.options.bus.consume(this.handler);
      this.stateValue = 'consuming';
      this.options.logger.info('consuming jobs again: the backend is up');
    }
  }

  private async pause(owner: OwnerRef): Promise<void> {
    if (this.draining) return;
    this.stateValue = 'paused';
    const subscription = this.subscription;
    this.subscription = undefined;
    this.options.logger.warn({ owner: owner.incarnation }, 'incarnation ended; not consuming until the next one');
    try {
      await subscription?.cancel();
    } catch (err) {
      this.options.logger.warn({ err }, 'cancelling the subscription failed');
    }
  }

  private get draining(): boolean {
    return this.stateValue === 'draining' || this.stateValue === 'stopped';
  }
}
