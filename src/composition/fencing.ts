/**
 * Fencing as the composition root assembles it, on every worker: the fence runner with its
 * methods (the local process check, then the configured one), the gate a lock hand-off passes,
 * and the wait a takeover makes for a dead owner's fence.
 */
import type { VolumeDriver } from '../drivers/volume-driver.js';
import { fenceGates, type FenceGates } from '../fencing/gates.js';
import { ExecFence } from '../fencing/exec-method.js';
import { KubernetesFence } from '../fencing/kubernetes-method.js';
import { LockDelayFence } from '../fencing/lock-delay.js';
import type { FenceMethod } from '../fencing/method.js';
import { FenceMetrics } from '../fencing/metrics.js';
import { ProcessGoneFence } from '../fencing/process-method.js';
import { RecordCollector } from '../fencing/record-collector.js';
import { FenceRunner } from '../fencing/runner.js';
import type { ProcessIdentity } from '../identity.js';
import type { Incarnations } from '../incarnation/incarnation.js';
import { Backoff } from '../lifecycle/retry.js';
import type { Backends, CompositionContext } from './backends.js';

/** What the worker's other parts use of fencing. */
export interface Fencing extends FenceGates {
  readonly runner: FenceRunner;
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
      self: parts.self,
      retry: new Backoff({ initialDelayMs: Math.min(1_000, config.fencing.retryMaxDelayMs), maxDelayMs: config.fencing.retryMaxDelayMs }),
      sweepIntervalMs: FENCE_SWEEP_MS,
    }),
  );
  runner.start();
  const retentionMs = config.fencing.recordRetentionMs;
  const collector = closer.use(
    'incarnation record collector',
    new RecordCollector({
      membership,
      referenced: async (incarnation) => (await backends.store.listOps({ ownerIncarnation: incarnation })).length > 0,
      clock,
      logger,
      retentionMs,
      intervalMs: Math.min(Math.max(retentionMs / 4, 60_000), 3_600_000),
    }),
  );
  collector.start();
  return { runner, ...fenceGates({ membership, runner, logger }) };
}
