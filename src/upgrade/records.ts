/**
 * The upgrade concern's records and their codecs: a process's presence (what it reads and
 * writes) and the cluster's schema state (the finalized record schema and its data migration).
 *
 * Both carry their own format version `v`. A later release may add fields (readers ignore the
 * ones they do not know) but must keep every field of version 1 meaning what it means, so the
 * release before it can still read them; changing one would need a version 2, read by both
 * releases of a roll before either writes it.
 */
import { z } from 'zod';
import { checkVersion, type ProtocolSupport, type VersionRange, VersionUnsupportedError } from '../protocol.js';

/** The format versions of presence and schema records this build reads. */
export const UPGRADE_RECORD_VERSIONS: VersionRange = { min: 1, max: 1 };

/** The roles a process runs (`roles`). */
export type Role = 'api' | 'worker';

/**
 * `upgrade/processes/<host>/<leaseHex>`: one live process — worker or API-only alike — on a
 * lease of its own, so that it vanishes when the process stops or dies.
 */
export interface PresenceRecord extends ProtocolSupport {
  /** Host id `<host>@<backend>` (a worker's host; an API-only process's configured host). */
  readonly host: string;
  /** The cluster id it serves (`<name>@<backend>`). */
  readonly cluster: string;
  readonly roles: readonly Role[];
  /** hearth's package version, e.g. `0.2.0`. */
  readonly build: string;
  /** The source revision it was built from (`unknown` when not recorded). */
  readonly revision: string;
  readonly pid: number;
  /** Epoch ms. */
  readonly startedAtMs: number;
}

/** A presence record as read from the store. */
export interface LiveProcess extends PresenceRecord {
  /** `<host>/<leaseHex>` on etcd: unique per run. */
  readonly id: string;
  /** Create revision of its key (decimal; `'0'` on a single node). */
  readonly since: string;
}

/** The online data migration toward the finalized schema. */
export interface MigrationState {
  readonly from: number;
  readonly to: number;
  /** True once a full pass found no record below `to`. */
  readonly done: boolean;
  /** The last key migrated of the pass in progress; null at the start of a pass. */
  readonly cursor: string | null;
  /** Records rewritten so far. */
  readonly migrated: number;
  /** Full passes over the records so far. */
  readonly passes: number;
  /** Records rewritten (or changed by others meanwhile) in the pass in progress: a pass with none ends the migration. */
  readonly passRewritten: number;
  /** Records of the pass in progress this build could not read (they block the end), and the first keys. */
  readonly passUnreadable: number;
  readonly passUnreadableKeys: readonly string[];
  /**
   * Set when a pass ended having rewritten nothing while records it could not read remain: the
   * migration is not done (records below the schema stay legal) and waits for an operator to
   * repair or delete them and run `hearth upgrade finalize` again. Cleared by the next pass.
   */
  readonly blockedBy: { readonly count: number; readonly keys: readonly string[] } | null;
  readonly startedAtMs: number;
  readonly updatedAtMs: number;
  readonly completedAtMs: number | null;
}

/** `upgrade/schema`: the record schema the cluster has finalized. */
export interface SchemaState {
  readonly version: number;
  /** When and by whom it was last raised; null for the schema the cluster started with. */
  readonly finalizedAtMs: number | null;
  readonly finalizedBy: string | null;
  /** The migration toward `version`; null when none was needed. */
  readonly migration: MigrationState | null;
  /** The key's mod revision (`'0'` on a single node): what a compare-and-swap compares. */
  readonly revision: string;
}

/** The lowest schema a stored record may still have: the migration's start until it is done. */
export function recordFloor(schema: Pick<SchemaState, 'version' | 'migration'>): number {
  return schema.migration && !schema.migration.done ? schema.migration.from : schema.version;
}

const range = z.object({ min: z.number().int().min(1), max: z.number().int().min(1) }).refine((r) => r.min <= r.max, 'min must not exceed max');

const presenceSchema = z.object({
  host: z.string().min(1).max(255),
  cluster: z.string().min(1).max(255),
  roles: z.array(z.enum(['api', 'worker'])).max(2),
  build: z.string().max(64),
  revision: z.string().max(64),
  messages: range,
  schema: range,
  pid: z.number().int().nonnegative(),
  startedAtMs: z.number().int().nonnegative(),
});

const migrationSchema = z.object({
  from: z.number().int().min(1),
  to: z.number().int().min(1),
  done: z.boolean(),
  cursor: z.string().nullable(),
  migrated: z.number().int().nonnegative(),
  passes: z.number().int().nonnegative(),
  passRewritten: z.number().int().nonnegative(),
  // Absent in states the first release wrote.
  passUnreadable: z.number().int().nonnegative().default(0),
  passUnreadableKeys: z.array(z.string().max(4096)).max(100).default([]),
  blockedBy: z.object({ count: z.number().int().nonnegative(), keys: z.array(z.string().max(4096)).max(100) }).nullable().default(null),
  startedAtMs: z.number().int().nonnegative(),
  updatedAtMs: z.number().int().nonnegative(),
  completedAtMs: z.number().int().nonnegative().nullable(),
});

const schemaStateSchema = z.object({
  version: z.number().int().min(1),
  finalizedAtMs: z.number().int().nonnegative().nullable(),
  finalizedBy: z.string().max(255).nullable(),
  migration: migrationSchema.nullable(),
});

function parse<T>(text: string, subject: string, schema: z.ZodType<T>): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const checked = checkVersion(body.v, UPGRADE_RECORD_VERSIONS);
  if (!checked.ok) throw new VersionUnsupportedError(subject, checked.problem, UPGRADE_RECORD_VERSIONS);
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new VersionUnsupportedError(subject, { kind: 'wrong-type', type: `malformed (${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''})` }, UPGRADE_RECORD_VERSIONS);
  }
  return result.data;
}

/** The stored form of a presence record. */
export function encodePresence(record: PresenceRecord): string {
  const { host, cluster, roles, build, revision, messages, schema, pid, startedAtMs } = record;
  return JSON.stringify({ v: 1, host, cluster, roles, build, revision, messages, schema, pid, startedAtMs });
}

/** Reads a presence record. @throws VersionUnsupportedError naming `subject` when it cannot. */
export function decodePresence(text: string, subject: string): PresenceRecord {
  return parse(text, `presence record ${subject}`, presenceSchema);
}

/** The stored form of a schema state (without its revision). */
export function encodeSchemaState(state: Omit<SchemaState, 'revision'>): string {
  const { version, finalizedAtMs, finalizedBy, migration } = state;
  return JSON.stringify({ v: 1, version, finalizedAtMs, finalizedBy, migration });
}

/** Reads a schema state. @throws VersionUnsupportedError naming `subject` when it cannot. */
export function decodeSchemaState(text: string, subject: string, revision: string): SchemaState {
  return { ...parse(text, `schema record ${subject}`, schemaStateSchema), revision };
}
