/**
 * Fencing as the composition root assembles it, on every worker: the fence runner with its
 * methods (the local process check, then the configured one), the gate a lock hand-off passes,
 * and the wait a takeover makes for a dead owner's fence.
 */
import type { VolumeDriver } from '../drivers/volume-driver.js';
import { ExecFence } from '../fencing/exec-method.js';
import { KubernetesFence } from '../fencing/kubernetes-method.js';
import { LockDelayFence } from '../fencing/lock-delay.js';
import type { FenceMethod } from '../fencing/method.js';
import { FenceMetrics } from '../fencing/metrics.js';
import { ProcessGoneFence } from '../fencing/process-method.js';
import { FenceRunner } from '../fencing/runner.js';
import type { OwnerRef, ProcessIdentity } from '../identity.js';
import type { Incarnations } from '../incarnation/incarnation.js';
import { Backoff } from '../lifecycle/retry.js';
import type { LockHolder } from '../locks/errors.js';
import type { Backends, CompositionContext } from './backends.js';

/** What the worker's other parts use of fencing. */
export interface Fencing {
  readonly runner: FenceRunner;
  /** The lock hand-off gate: resolves once taking over from `previousOwner` is safe. */
  handOff(previousOwner: LockHolder, signal: AbortSignal): Promise<void>;
  /** Asks for the fence of a dead owner and waits for it (bounded by `signal`); true once it is on record. */
  awaitFence(owner: OwnerRef, cluster: string, signal: AbortSignal): Promise<boolean>;
}

/** How often the runner looks at pending fences when nothing happened. */
const FENCE_SWEEP_MS = 5_000;

/** The configured method (`fencing.method`). */
function externalMethod(ctx: CompositionContext): FenceMethod {
  const { config, clock } = ctx;
  const logger = ctx.logger.child({ component: 'fencing' });
  switch (config.fencing.method) {
    case 'exec':
      return new ExecFence(config.fencing.exec, logger);
    case 'kubernetes':
      return new KubernetesFence(config.fencing.kubernetes, logger);
    case 'none':
      return new LockDelayFence(config.fencing.lockDelayMs || config.leaseTtlMs, clock);
  }
}

/** Builds and starts the fence runner; it stops when the closer runs. */
export function startFencing(ctx: CompositionContext, parts: { readonly backends: Backends; readonly incarnations: Incarnations; readonly driver: VolumeDriver; readonly self: ProcessIdentity }): Fencing {
  const { config, clock, registry, closer } = ctx;
  const { backends, driver } = parts;
  const membership = backends.membership;
  const logger = ctx.logger.child({ component: 'fencing' });
  const runner = closer.use(
    'fence runner',
    new FenceRunner({
      queue: backends.fenceQueue,
      membership,
      incarnations: parts.incarnations,
      methods: { local: new ProcessGoneFence(parts.self), external: externalMethod(ctx) },
      ...(driver.fenceIncarnation ? { fenceDriver: (incarnation: string) => driver.fenceIncarnation?.(incarnation) ?? Promise.resolve() } : {}),
      clock,
      logger,
      metrics: new FenceMetrics(registry),
      selfFenceGraceMs: config.fencing.selfFenceGraceMs,
      retry: new Backoff({ initialDelayMs: Math.min(1_000, config.fencing.retryMaxDelayMs), maxDelayMs: config.fencing.retryMaxDelayMs }),
      sweepIntervalMs: FENCE_SWEEP_MS,
    }),
  );
  runner.start();
  const hostOf = (incarnation: string): string => incarnation.slice(0, incarnation.lastIndexOf(':'));
  return {
    runner,
    async handOff(previousOwner, signal) {
      const incarnation = previousOwner.incarnation;
      // A holder hearth did not write (`etcdctl lock`) names no incarnation: nothing to fence.
      if (incarnation === undefined) return;
      const view = await membership.incarnation(incarnation);
      // Released while alive, or it left cleanly or was fenced: the hand-off is safe.
      if (view.alive || view.end) return;
      logger.info({ incarnation }, 'a lock held by a dead incarnation waits for its fence');
      await runner.need({ incarnation, host: hostOf(incarnation), cluster: view.record?.cluster ?? '' }, true);
      await membership.waitEnded(incarnation, signal);
    },
    async awaitFence(owner, cluster, signal) {
      await runner.need({ incarnation: owner.incarnation, host: owner.host, cluster });
      try {
        await membership.waitEnded(owner.incarnation, signal);
        return true;
      } catch {
        return false;
      }
    },
  };
}
