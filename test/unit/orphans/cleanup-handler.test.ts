import { describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../../src/errors.js';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { ClaimedOrphan, CleanupReport, CleanupScope } from '../../../src/orphans/cleaner.js';
import { cleanupHandler } from '../../../src/orphans/cleanup-handler.js';
import type { Orphan } from '../../../src/orphans/find-orphans.js';
import type { JobDelivery } from '../../../src/routing/job-bus.js';
import type { BusMessage, CleanupMessage } from '../../../src/routing/job-message.js';
import { dispatcher } from '../../../src/worker/message-dispatch.js';

const request: CleanupMessage = { v: 1, kind: 'cleanup', cluster: 'c@be', host: 'dead@be', resourceType: 'volume', resourceId: 'vol-1', requestId: 'req-1', publishedAt: 1 };

function delivery<M extends BusMessage>(job: M): JobDelivery<M> {
  return { job, via: 'cluster', deliveryCount: 1, redelivered: false, signal: new AbortController().signal };
}

const report = (over: Partial<CleanupReport> = {}): CleanupReport => ({ found: 0, cleaned: 0, skipped: 0, awaitingFence: 0, errors: 0, ...over });

describe('the cleanup message handler (Cinder do_cleanup)', () => {
  it('lists the service\'s orphans in the request\'s scope, claims them, acknowledges, and finishes them afterwards', async () => {
    const scopes: CleanupScope[] = [];
    const finished: ClaimedOrphan[][] = [];
    const orphans = [{ op: { id: 'vol-1' } }] as unknown as Orphan[];
    const claimed = [{ orphan: orphans[0] }] as unknown as ClaimedOrphan[];
    const handler = cleanupHandler({
      cleaner: {
        find: async (scope) => (scopes.push(scope), orphans),
        claimAll: async (list, reason) => {
          expect(list).toBe(orphans);
          expect(reason).toBe('cleanup');
          return { claimed, report: report({ found: 1 }) };
        },
        finishInBackground: (c) => void finished.push([...c]),
      },
      live: () => true,
      logger: silentLogger(),
    });
    expect(await handler(delivery(request))).toEqual({ type: 'ack' });
    expect(scopes).toEqual([{ ownerHost: 'dead@be', cluster: 'c@be', resourceType: 'volume', resourceId: 'vol-1' }]);
    expect(finished).toEqual([claimed]);
  });

  it('hands the request back when this worker is not a live member, and retries it later when etcd is away', async () => {
    const idle = cleanupHandler({ cleaner: { find: async () => [], claimAll: async () => ({ claimed: [], report: report() }), finishInBackground: () => undefined }, live: () => false, logger: silentLogger() });
    expect(await idle(delivery(request))).toEqual({ type: 'requeue' });
    const away = cleanupHandler({
      cleaner: {
        find: async () => {
          throw new BackendUnavailableError('etcd', 'etcd unreachable');
        },
        claimAll: async () => ({ claimed: [], report: report() }),
        finishInBackground: () => undefined,
      },
      live: () => true,
      logger: silentLogger(),
      retryDelayMs: 1_500,
    });
    expect(await away(delivery(request))).toEqual({ type: 'retry-later', delayMs: 1_500 });
  });

  it('the worker\'s dispatcher routes kind cleanup to its handler and jobs to theirs; an unhandled type is dead-lettered', async () => {
    const seen: string[] = [];
    const route = dispatcher(
      {
        job: async (d) => (seen.push(`job ${d.job.opId}`), { type: 'ack' }),
        cleanup: async (d) => (seen.push(`cleanup ${d.job.host}`), { type: 'ack' }),
      },
      silentLogger(),
    );
    await route(delivery(request));
    await route(delivery({ v: 1, type: 'volume', id: 'v', opId: 'op-9', kind: 'delete_volume', cluster: 'c@be', attempt: 0, publishedAt: 1 }));
    expect(seen).toEqual(['cleanup dead@be', 'job op-9']);
    const jobsOnly = dispatcher({ job: async () => ({ type: 'ack' }) }, silentLogger());
    expect(await jobsOnly(delivery(request))).toMatchObject({ type: 'dead-letter', reason: 'rejected' });
  });
});

describe('orphans options', () => {
  it('refuse automatic cleanup with a grace period shorter than the lease TTL, and take a valid one', async () => {
    const err = await loadConfig({ env: { HEARTH_ORPHANS_AUTO_CLEANUP: 'true', HEARTH_ORPHANS_GRACE_MS: '5000', HEARTH_LEASE_TTL_MS: '10000' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([expect.objectContaining({ path: 'orphans.graceMs', env: 'HEARTH_ORPHANS_GRACE_MS' })]);
    expect((err as ConfigError).message).toContain('at least leaseTtlMs (10000 ms)');
    // Off, the grace period is not used, so it is not held against the TTL.
    const off = await loadConfig({ env: { HEARTH_ORPHANS_GRACE_MS: '5000', HEARTH_LEASE_TTL_MS: '10000' } });
    expect(off.orphans).toMatchObject({ autoCleanup: false, graceMs: 5_000, creatingAction: 'error' });
    const on = await loadConfig({ env: { HEARTH_ORPHANS_AUTO_CLEANUP: 'true', HEARTH_ORPHANS_GRACE_MS: '10000', HEARTH_LEASE_TTL_MS: '10000', HEARTH_ORPHANS_CREATING_ACTION: 'resume' } });
    expect(on.orphans).toMatchObject({ autoCleanup: true, graceMs: 10_000, creatingAction: 'resume', sweepIntervalMs: 15_000 });
    await expect(loadConfig({ env: { HEARTH_ORPHANS_CREATING_ACTION: 'retry' } })).rejects.toThrow(/orphans.creatingAction/);
  });
});
