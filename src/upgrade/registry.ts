/**
 * The UpgradeRegistry port: where processes say what they read and write, and where the
 * cluster's record schema is kept and raised (`docs/upgrades.md`).
 *
 * On etcd every process — worker or API-only — keeps `upgrade/processes/<host>/<leaseHex>` on a
 * lease of its own, so a process that stops or dies stops counting the moment its key goes (a
 * revoke on a clean stop, the lease's expiry otherwise): nothing pins the cluster to an old
 * version after its process is gone. `upgrade/schema` holds the finalized schema and its data
 * migration. The single-node adapter has one process and a schema its SQLite file migrated to
 * on start.
 */
import type { RecordVersions } from '../state/record-versions.js';
import type { LiveProcess, PresenceRecord, SchemaState } from './records.js';

/** Live processes and the schema, read at one revision. */
export interface UpgradeSnapshot {
  readonly processes: readonly LiveProcess[];
  /** Undefined when the cluster has none yet. */
  readonly schema: SchemaState | undefined;
  /** The store revision of the read (`'0'` on a single node). */
  readonly revision: string;
}

/** What the watch reports, in revision order. */
export type UpgradeEvent =
  /** The whole picture: first, and again after the watch broke (it replaces what was known). */
  | { readonly type: 'synced'; readonly snapshot: UpgradeSnapshot }
  | { readonly type: 'process-joined'; readonly process: LiveProcess; readonly revision: string }
  | { readonly type: 'process-left'; readonly process: LiveProcess; readonly revision: string }
  | { readonly type: 'schema-changed'; readonly schema: SchemaState; readonly revision: string };

/** This process's presence, from `announce` until it is closed or its lease is lost. */
export interface Presence {
  readonly id: string;
  /** Aborts when the presence is gone: its lease was lost (announce again) or it was closed. */
  readonly signal: AbortSignal;
  /** Removes it at once (revokes its lease). Idempotent. */
  close(): Promise<void>;
}

/** The outcome of `announce`: the schema changed since it was read (read it again) is a value. */
export type AnnounceResult = { readonly ok: true; readonly presence: Presence } | { readonly ok: false; readonly schema: SchemaState | undefined };

/** The outcome of a schema write; a lost race is a value. */
export type SchemaWriteResult =
  | { readonly ok: true; readonly schema: SchemaState }
  /** `schema`: someone else changed it; `processes`: a process announced itself after the check. */
  | { readonly ok: false; readonly reason: 'schema' | 'processes' };

/** One batch of the data migration. */
export interface MigrationBatch {
  /** The last key looked at, or null when the pass reached the end. */
  readonly cursor: string | null;
  /** Records rewritten. */
  readonly migrated: number;
  /** Records found below the target but changed by someone else meanwhile (the next pass sees them again). */
  readonly raced: number;
  /** Keys of records this build could not read (left as they are; they keep the migration from ending). */
  readonly unreadable: readonly string[];
}

/** See the module doc. */
export interface UpgradeRegistry {
  /** True on etcd (cluster-wide), false on a single node. */
  readonly distributed: boolean;
  /**
   * The cluster's schema state; when it has none, creates it at `initial` (exactly once however
   * many processes start at once).
   *
   * Failure semantics: a retryable `BackendUnavailableError` when the store cannot be reached;
   * `VersionUnsupportedError` when the stored state cannot be read.
   */
  schema(initial: number, signal?: AbortSignal): Promise<SchemaState>;
  /** Live processes and the schema at one revision. Failure semantics: as {@link schema}. */
  snapshot(signal?: AbortSignal): Promise<UpgradeSnapshot>;
  /**
   * Announces this process, atomically with a check that the schema is still `expected` (its
   * revision): a finalize cannot slip between a process's start-up check and its announcement.
   *
   * Failure semantics: a retryable `BackendUnavailableError` when the store cannot be reached
   * (nothing was announced: a lease granted meanwhile is revoked).
   */
  announce(record: PresenceRecord, expected: SchemaState, signal?: AbortSignal): Promise<AnnounceResult>;
  /**
   * Processes joining and leaving and schema changes, until `signal` aborts: first `synced`.
   *
   * Failure semantics: survives disconnections (resumes from its revision); when the watch
   * breaks it lists again and reports `synced`. Nothing is polled.
   */
  watch(signal: AbortSignal): AsyncIterable<UpgradeEvent>;
  /**
   * Replaces the schema state at `expected.schema` (its revision) with `next` — and, when
   * `expected.processes` is given, only if no process announced itself after that revision,
   * so that a process that started after the caller's check cannot be missed.
   *
   * Failure semantics: a retryable `BackendUnavailableError` (the write may or may not have
   * landed: read again).
   */
  writeSchema(next: Omit<SchemaState, 'revision'>, expected: { readonly schema: string; readonly processes?: string }): Promise<SchemaWriteResult>;
  /**
   * Takes the migration baton for this process's presence, unless another live process holds
   * it; it is released by {@link releaseMigration} or with the presence.
   */
  claimMigration(presence: Presence): Promise<boolean>;
  releaseMigration(presence: Presence): Promise<void>;
  /**
   * Rewrites up to `limit` records after `cursor` (in key order, resources then ops) whose
   * schema is below `to`, each with a compare-and-swap on its revision (a record someone else
   * changed meanwhile is counted in `raced` and left for the next pass).
   *
   * Failure semantics: a retryable `BackendUnavailableError`; records rewritten before it stay
   * rewritten (each is its own write), and the caller resumes from its last saved cursor.
   */
  migrateBatch(to: number, cursor: string | null, limit: number, codec: RecordVersions, signal?: AbortSignal): Promise<MigrationBatch>;
  /** Stops every watch; presences are closed by their owners. Idempotent. */
  close(): Promise<void>;
}
