import { CoordinatorError } from '../errors.js';
import type { Clock } from '../lifecycle/clock.js';
import type { Logger } from '../observability/logger.js';
import type { ProtocolSupport } from '../protocol.js';
import type { MigrationRunner } from './migration.js';
import { finalizeCheck, type FinalizeCheck, mixedSince, negotiateMessages, type NegotiatedVersion, workerMessageVersion } from './policy.js';
import { type LiveProcess, type PresenceRecord, recordFloor, type SchemaState } from './records.js';
import type { Presence, UpgradeRegistry } from './registry.js';

/** What `hearth upgrade status` shows. */
export interface UpgradeStatus {
  readonly distributed: boolean;
  /** The process that answered. */
  readonly self: PresenceRecord & { readonly id: string | null };
  readonly schema: SchemaState & { readonly floor: number };
  /** Raising the schema to `next.target`: what blocks it (nothing: `hearth upgrade finalize` may run). */
  readonly next: FinalizeCheck;
  /** Per cluster: the message version publishers write now, and who holds it below the newest. */
  readonly messages: readonly (NegotiatedVersion & { readonly cluster: string; readonly workers: number; readonly workerVersion: number })[];
  readonly processes: readonly LiveProcess[];
  /** Per cluster: since when it has run more than one release (epoch ms; null: one). */
  readonly mixedSince: ReadonlyMap<string, number | null>;
}

/** The outcome of a finalize. */
export type FinalizeOutcome =
  | { readonly ok: true; readonly schema: SchemaState; readonly raised: boolean }
  | { readonly ok: false; readonly check: FinalizeCheck };

/** What an {@link UpgradeService} needs. */
export interface UpgradeServiceOptions {
  readonly registry: UpgradeRegistry;
  readonly own: ProtocolSupport;
  readonly record: PresenceRecord;
  /** This process's presence now (undefined while it is announced again). */
  readonly presence: () => Presence | undefined;
  readonly runner: MigrationRunner;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A finalize that keeps losing races to processes starting or another finalize. */
export class FinalizeRaceError extends CoordinatorError {
  constructor() {
    super('CONFLICT', 'the processes or the schema kept changing while finalizing; try again', { retryable: true });
  }
}

/** A single node has nothing to finalize. */
const SINGLE_NODE = (target: number): FinalizeCheck => ({
  target,
  blockedBy: [],
  reasons: ['a single node migrates its records when it starts, after a backup of its state file; there is nothing to finalize'],
});

/** Finalizes at most this often per call when processes keep announcing themselves meanwhile. */
const MAX_FINALIZE_RACES = 3;

/**
 * `hearth upgrade status` and `hearth upgrade finalize` (`docs/upgrades.md`): reads a fresh
 * snapshot of the live processes and the schema; raises the schema one version once every live
 * process supports it, in one write that fails if a process announced itself after the check;
 * then runs (or resumes) the data migration in the background.
 */
export class UpgradeService {
  private readonly stop = new AbortController();

  constructor(private readonly options: UpgradeServiceOptions) {}

  async status(signal?: AbortSignal): Promise<UpgradeStatus> {
    const { registry, own, record } = this.options;
    const snapshot = await registry.snapshot(signal);
    const schema = snapshot.schema ?? (await registry.schema(own.schema.min, signal));
    const clusters = [...new Set([record.cluster, ...snapshot.processes.map((p) => p.cluster)])].sort();
    const byCluster = (c: string): LiveProcess[] => snapshot.processes.filter((p) => p.cluster === c);
    return {
      distributed: registry.distributed,
      self: { ...record, id: this.options.presence()?.id ?? null },
      schema: { ...schema, floor: recordFloor(schema) },
      next: registry.distributed ? finalizeCheck(own, schema, snapshot.processes) : SINGLE_NODE(schema.version + 1),
      messages: clusters.map((cluster) => ({
        cluster,
        workers: byCluster(cluster).filter((p) => p.roles.includes('worker')).length,
        ...negotiateMessages(own.messages, snapshot.processes, cluster),
        workerVersion: workerMessageVersion(own.messages, snapshot.processes, cluster),
      })),
      processes: [...snapshot.processes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      mixedSince: new Map(clusters.map((c) => [c, mixedSince(byCluster(c))])),
    };
  }

  /**
   * Raises the record schema to `target` (default: the next one) and starts its data migration;
   * with the schema at `target` already, resumes an unfinished migration. A refusal (a live
   * process that cannot read `target`, a migration still running, a target this build cannot
   * write) is a value naming every reason.
   *
   * @throws FinalizeRaceError when processes kept announcing themselves meanwhile;
   *   BackendUnavailableError when the store cannot be reached.
   */
  async finalize(target?: number, signal?: AbortSignal): Promise<FinalizeOutcome> {
    const { registry, own, clock, logger } = this.options;
    for (let race = 1; race <= MAX_FINALIZE_RACES; race++) {
      const snapshot = await registry.snapshot(signal);
      const schema = snapshot.schema ?? (await registry.schema(own.schema.min, signal));
      if (!registry.distributed) return { ok: false, check: SINGLE_NODE(target ?? schema.version + 1) };
      if (target === schema.version || (target === undefined && schema.migration && !schema.migration.done)) {
        const m = schema.migration;
        if (m?.blockedBy) {
          // Asked again after a blocked pass (the operator repaired the records): a fresh pass,
          // and the status no longer says blocked until that pass says so again.
          const retried = await registry.writeSchema({ ...schema, migration: { ...m, blockedBy: null, cursor: null, updatedAtMs: clock.now() } }, { schema: schema.revision });
          if (!retried.ok) continue;
          this.resume(retried.schema);
          return { ok: true, schema: retried.schema, raised: false };
        }
        this.resume(schema);
        return { ok: true, schema, raised: false };
      }
      const check = finalizeCheck(own, schema, snapshot.processes, target);
      if (check.reasons.length > 0) return { ok: false, check };
      const now = clock.now();
      const next: Omit<SchemaState, 'revision'> = {
        version: check.target,
        finalizedAtMs: now,
        finalizedBy: this.options.presence()?.id ?? this.options.record.host,
        migration: { from: schema.version, to: check.target, done: false, cursor: null, migrated: 0, passes: 0, passRewritten: 0, passUnreadable: 0, passUnreadableKeys: [], blockedBy: null, startedAtMs: now, updatedAtMs: now, completedAtMs: null },
      };
      const written = await registry.writeSchema(next, { schema: schema.revision, processes: snapshot.revision });
      if (written.ok) {
        logger.info({ from: schema.version, to: check.target, processes: snapshot.processes.length }, 'record schema finalized; migrating the records');
        this.resume(written.schema);
        return { ok: true, schema: written.schema, raised: true };
      }
      logger.info({ race, reason: written.reason }, 'finalize lost a race; checking again');
    }
    throw new FinalizeRaceError();
  }

  /** Runs the unfinished migration of `schema` in the background, if this process can. */
  resume(schema: SchemaState): void {
    const presence = this.options.presence();
    if (!presence || !schema.migration || schema.migration.done) return;
    void this.options.runner.run(schema, presence, this.stop.signal).catch((err: unknown) => this.options.logger.error({ err }, 'the data migration stopped'));
  }

  /** Stops a migration this process runs (it resumes elsewhere or later). Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
  }
}
