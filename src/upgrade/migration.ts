import { AbortedError, isRetryable } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Backoff } from '../lifecycle/retry.js';
import type { Logger } from '../observability/logger.js';
import type { RecordVersions } from '../state/record-versions.js';
import type { UpgradeMetrics } from './metrics.js';
import type { MigrationState, SchemaState } from './records.js';
import type { Presence, UpgradeRegistry } from './registry.js';

/** What a {@link MigrationRunner} needs. */
export interface MigrationRunnerOptions {
  readonly registry: UpgradeRegistry;
  /** The record codec: reads the old schema, writes the new one. */
  readonly codec: RecordVersions;
  /** Records per batch (`upgrade.migrationBatchSize`). */
  readonly batchSize: number;
  readonly metrics?: UpgradeMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retry: Backoff;
}

/** Consecutive failures of one batch before a run gives up (the next start or finalize resumes it). */
const MAX_BATCH_FAILURES = 10;

/**
 * The online data migration (Cinder's `online_data_migrations`): after a finalize, rewrites every
 * record still below the new schema, in batches of `batchSize`, each record with its own
 * compare-and-swap, while the cluster keeps serving. Progress (the cursor) is saved in the
 * schema state after every batch, so a run that dies resumes where it stopped — at the next
 * start of any process, or the next `hearth upgrade finalize`. A pass that reaches the end
 * having rewritten something starts another; the migration is done after a pass that found
 * nothing left, and only then do records below the schema count as bad input. A pass that
 * rewrote nothing but met records this build cannot read is not an end: the migration is
 * *blocked* (`blockedBy` names them), the run stops, and the next `finalize` or start runs
 * another pass — after an operator repaired or deleted them (docs/upgrades.md).
 *
 * One process runs it at a time: the one holding `upgrade/migrator` on its presence lease.
 *
 * Failure semantics: a batch that cannot reach etcd is retried with the `retry` waits (bounded;
 * then the run stops and a later one resumes). A record this build cannot read is logged, left
 * as it is, and keeps the migration from ending. A schema state changed by someone else (another finalize) ends the run.
 */
/** The keys of unreadable records a migration state names (the count is exact). */
const UNREADABLE_KEYS_KEPT = 20;

export class MigrationRunner {
  private running: Promise<SchemaState | undefined> | undefined;

  constructor(private readonly options: MigrationRunnerOptions) {}

  /** True while this process runs a migration. */
  get active(): boolean {
    return this.running !== undefined;
  }

  /**
   * Runs the unfinished migration of `schema` to its end, unless another process runs it or
   * there is none; resolves with the last schema state written (undefined when it did not run).
   * A second call while one runs joins it.
   */
  run(schema: SchemaState, presence: Presence, signal: AbortSignal): Promise<SchemaState | undefined> {
    if (!schema.migration || schema.migration.done) return Promise.resolve(undefined);
    this.running ??= this.runOnce(schema, presence, signal).finally(() => (this.running = undefined));
    return this.running;
  }

  private async runOnce(start: SchemaState, presence: Presence, signal: AbortSignal): Promise<SchemaState | undefined> {
    const { registry, logger } = this.options;
    if (!(await registry.claimMigration(presence))) {
      logger.info('another process runs the data migration');
      return undefined;
    }
    const run = AbortSignal.any([signal, presence.signal]);
    let state = start;
    logger.info({ from: start.migration?.from, to: start.version, cursor: start.migration?.cursor }, 'running the data migration');
    try {
      while (!run.aborted && state.migration && !state.migration.done) {
        const next = await this.batch(state, state.migration, run);
        if (!next) return state;
        state = next;
        const blocked = state.migration?.cursor === null ? state.migration.blockedBy : null;
        if (blocked) {
          logger.error({ to: state.version, unreadable: blocked.count, keys: blocked.keys }, 'the data migration cannot end: records this build cannot read remain (repair or delete them, then run `hearth upgrade finalize` again)');
          return state;
        }
      }
      if (state.migration?.done) logger.info({ to: state.version, migrated: state.migration.migrated, passes: state.migration.passes }, 'the data migration is done');
      return state;
    } finally {
      await registry.releaseMigration(presence).catch((err: unknown) => logger.debug({ err }, 'could not release the migration baton; it goes with the presence'));
    }
  }

  /** One batch and its saved progress; undefined when the run must stop. */
  private async batch(state: SchemaState, m: MigrationState, signal: AbortSignal): Promise<SchemaState | undefined> {
    const { registry, codec, batchSize, clock, logger, metrics, retry } = this.options;
    for (let failures = 1; ; failures++) {
      try {
        const batch = await registry.migrateBatch(m.to, m.cursor, batchSize, codec, signal);
        metrics?.migrated.inc(batch.migrated);
        const now = clock.now();
        const passRewritten = m.passRewritten + batch.migrated + batch.raced;
        const passUnreadable = m.passUnreadable + batch.unreadable.length;
        const passUnreadableKeys = [...m.passUnreadableKeys, ...batch.unreadable].slice(0, UNREADABLE_KEYS_KEPT);
        const passEnded = batch.cursor === null;
        const done = passEnded && passRewritten === 0 && passUnreadable === 0;
        const blockedBy = !passEnded ? m.blockedBy : passRewritten === 0 && passUnreadable > 0 ? { count: passUnreadable, keys: passUnreadableKeys } : null;
        const migration: MigrationState = {
          ...m,
          cursor: batch.cursor,
          migrated: m.migrated + batch.migrated,
          passes: m.passes + (passEnded ? 1 : 0),
          passRewritten: passEnded ? 0 : passRewritten,
          passUnreadable: passEnded ? 0 : passUnreadable,
          passUnreadableKeys: passEnded ? [] : passUnreadableKeys,
          blockedBy,
          done,
          updatedAtMs: now,
          completedAtMs: done ? now : null,
        };
        const written = await registry.writeSchema({ ...state, migration }, { schema: state.revision });
        if (!written.ok) {
          logger.warn('the schema state changed while migrating; stopping this run');
          return undefined;
        }
        return written.schema;
      } catch (err) {
        if (err instanceof AbortedError || signal.aborted) return undefined;
        if (!isRetryable(err) || failures >= MAX_BATCH_FAILURES) {
          logger.error({ err, cursor: m.cursor }, 'a data migration batch failed; it resumes from its saved cursor at the next start or finalize');
          return undefined;
        }
        logger.warn({ err, failures }, 'a data migration batch failed; retrying');
        if (!(await retry.wait(failures, clock, signal))) return undefined;
      }
    }
  }
}
