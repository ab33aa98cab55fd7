/**
 * The upgrade concern as the composition root assembles it, in every process (workers and
 * API-only alike), before anything publishes or writes: the start-up check and this process's
 * presence, the live view that feeds the bus's message version and the store's record schema,
 * and the service behind `hearth upgrade status|finalize` (docs/upgrades.md).
 */
import { clusterId, hostId } from '../config/rules.js';
import { isRetryable } from '../errors.js';
import { retry } from '../lifecycle/retry.js';
import type { Health } from '../ops/health.js';
import { PROTOCOL } from '../protocol.js';
import { RecordVersions } from '../state/record-versions.js';
import { UpgradeMetrics } from '../upgrade/metrics.js';
import { MigrationRunner } from '../upgrade/migration.js';
import { PresenceKeeper } from '../upgrade/presence-keeper.js';
import type { PresenceRecord } from '../upgrade/records.js';
import { UpgradeService } from '../upgrade/service.js';
import { UpgradeView } from '../upgrade/view.js';
import type { BuildInfo } from '../version.js';
import type { Backends, CompositionContext } from './backends.js';

/** What the rest of the composition uses of the upgrade concern. */
export interface UpgradeParts {
  readonly view: UpgradeView;
  readonly service: UpgradeService;
}

/**
 * Checks that this build may run on the cluster (its record schema, the releases alive),
 * announces the process, waits for the first full picture of the live processes, and resumes
 * an unfinished data migration.
 *
 * @throws ProtocolMismatchError when this build may not run on the cluster (the message names
 *   the schema and this build's range, or the process too far away); AbortedError on `signal`.
 *   An unreachable etcd is retried with the `retry.*` waits.
 */
export async function startUpgrade(ctx: CompositionContext, parts: { readonly backends: Backends; readonly health: Health; readonly build: BuildInfo }, signal?: AbortSignal): Promise<UpgradeParts> {
  const { config, clock, registry, closer } = ctx;
  const { backends, health, build } = parts;
  const logger = ctx.logger.child({ component: 'upgrade' });
  const record: PresenceRecord = {
    host: hostId(config),
    cluster: clusterId(config),
    roles: [...config.roles],
    build: build.version,
    revision: build.revision,
    messages: PROTOCOL.messages,
    schema: PROTOCOL.schema,
    pid: process.pid,
    startedAtMs: clock.now(),
  };
  // The gauges read the view, built below once this process is announced.
  const built: { view?: UpgradeView } = {};
  const metrics = new UpgradeMetrics(registry, () => clock.now(), () => built.view?.mixed() ?? new Map());
  metrics.mixedAllowed.set(config.upgrade.maxMixedVersionsMs / 1_000);

  // Registered before the API and the worker: the presence goes last, so this process keeps
  // pinning the versions it reads for as long as it may still receive or publish anything.
  const keeper = closer.use('presence', new PresenceKeeper({ registry: backends.upgrade, record, own: PROTOCOL, clock, logger, retry: ctx.retry }));
  const schema = await retry((_attempt, s) => keeper.start(s), {
    backoff: ctx.retry,
    clock,
    ...(signal ? { signal } : {}),
    shouldRetry: (err) => isRetryable(err),
    onRetry: (err, failures, delayMs) => logger.warn({ err, failures, delayMs }, 'cannot check the cluster’s versions yet; retrying'),
    what: 'checking the cluster’s versions',
  });
  const view = closer.use(
    'upgrade view',
    new UpgradeView({ registry: backends.upgrade, own: PROTOCOL, cluster: record.cluster, records: backends.protocol.records, messages: backends.protocol.messages, metrics, clock, logger, retry: ctx.retry }),
  );
  built.view = view;
  view.start();
  await view.ready(signal);
  health.addLiveness('protocol', () => {
    const kept = keeper.liveness();
    return kept.ok ? view.liveness() : kept;
  });
  const runner = new MigrationRunner({ registry: backends.upgrade, codec: new RecordVersions(), batchSize: config.upgrade.migrationBatchSize, metrics, clock, logger, retry: ctx.retry });
  const service = closer.use('upgrade service', new UpgradeService({ registry: backends.upgrade, own: PROTOCOL, record, presence: () => keeper.presence, runner, clock, logger }));
  service.resume(schema);
  logger.info({ schema: schema.version, messages: PROTOCOL.messages, schemas: PROTOCOL.schema, messageVersion: view.messageVersionFor(record.cluster) }, 'versions checked; this process is announced');
  return { view, service };
}
