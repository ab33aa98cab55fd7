/**
 * hearth's protocol versions: what this build reads and writes across a process boundary, and
 * the pure rules for running builds of different releases side by side (pure: no I/O).
 *
 * Two things are versioned, each by a small integer:
 *
 * - **messages** (jobs and cleanup requests on the bus, `v`): a publisher writes the highest
 *   version every live process of the cluster reads, and each version has its own queues, so a
 *   process never receives one it cannot read (`docs/upgrades.md`);
 * - **the record schema** (volume, snapshot and op records in etcd and SQLite, `v`): records
 *   are written at the cluster's *finalized* schema, which moves only by an operator's
 *   `hearth upgrade finalize`, so the previous release can run again until then.
 *
 * The skew policy: a build of release N reads and writes versions N−1 and N. Builds N and N−1
 * share a version and may run together; N and N−2 share none, and the later one refuses to start
 * while the other lives (`skewProblem`).
 */
import { CoordinatorError } from './errors.js';

/** An inclusive range of versions. */
export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

/** What one build reads and writes. */
export interface ProtocolSupport {
  readonly messages: VersionRange;
  readonly schema: VersionRange;
}

/**
 * This build: release 2 (release 1 was the first, `v0.1.0`). Every later release that changes a
 * message or a record adds the next version here, keeps reading the one before, and drops the
 * one before that (see docs/upgrades.md, "Adding a version").
 */
export const PROTOCOL: ProtocolSupport = {
  // Release 2 (issue 16): message 2 adds the job kinds clone_volume, create_volume_from_snapshot,
  // attach_volume and detach_volume (the attachment API); 1 still read and written.
  messages: { min: 1, max: 2 },
  // Schema 2: a volume's sources (snapshot_id, source_volid, source_held), its attachments and its
  // volume type's id (record-versions.ts, VOLUME_FIELDS_STEP).
  schema: { min: 1, max: 2 },
};

/**
 * The message version of the first release (2) that keeps the cluster record's replication
 * fields (`backendEpoch`, `replicationTargets`, `failover`) and honours a freeze and the backend
 * epoch. Release 1 re-encodes a cluster record without them, and its workers neither freeze nor
 * fence on the epoch: replication commands wait until every live process of the cluster reads
 * this version (docs/upgrades.md).
 */
export const CLUSTER_REPLICATION_SINCE = 2;

/** True when `version` is within `range`. */
export function inRange(version: number, range: VersionRange): boolean {
  return version >= range.min && version <= range.max;
}

/** `1–2`, or `1` when the range holds one version. */
export function formatRange(range: VersionRange): string {
  return range.min === range.max ? String(range.min) : `${range.min}–${range.max}`;
}

/** The versions both ranges hold, or undefined when they share none. */
export function overlap(a: VersionRange, b: VersionRange): VersionRange | undefined {
  const min = Math.max(a.min, b.min);
  const max = Math.min(a.max, b.max);
  return min <= max ? { min, max } : undefined;
}

/**
 * The highest version `own` writes that every one of `readers` reads; undefined when they share
 * none (the skew policy keeps that from happening). With no readers, `own.max`.
 */
export function highestCommon(own: VersionRange, readers: readonly VersionRange[]): number | undefined {
  let common: VersionRange | undefined = own;
  for (const r of readers) {
    common = common && overlap(common, r);
    if (!common) return undefined;
  }
  return common.max;
}

/**
 * Why a process of range `theirs` may not run beside this build (`ours`), or undefined when it
 * may: they must share a message version, and the one that starts later refuses otherwise.
 */
export function skewProblem(ours: ProtocolSupport, theirs: ProtocolSupport): string | undefined {
  if (!overlap(ours.messages, theirs.messages)) {
    return `it reads messages ${formatRange(theirs.messages)} and this build ${formatRange(ours.messages)}: releases more than one apart cannot run together`;
  }
  return undefined;
}

/** What is wrong with a version field. */
export type VersionProblem =
  | { readonly kind: 'missing' }
  | { readonly kind: 'wrong-type'; readonly type: string }
  | { readonly kind: 'unsupported'; readonly version: number };

/** Checks a version field: an integer within `supported`. */
export function checkVersion(value: unknown, supported: VersionRange): { readonly ok: true; readonly version: number } | { readonly ok: false; readonly problem: VersionProblem } {
  if (value === undefined || value === null) return { ok: false, problem: { kind: 'missing' } };
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    return { ok: false, problem: { kind: 'wrong-type', type: typeof value === 'number' ? 'a non-integer number' : Array.isArray(value) ? 'an array' : `a ${typeof value}` } };
  }
  if (!inRange(value, supported)) return { ok: false, problem: { kind: 'unsupported', version: value } };
  return { ok: true, version: value };
}

/** A version problem in words, e.g. `version 7 is newer than this build reads (1–2)`. */
export function describeVersionProblem(problem: VersionProblem, supported: VersionRange): string {
  switch (problem.kind) {
    case 'missing':
      return `no version field (this build reads ${formatRange(supported)})`;
    case 'wrong-type':
      return `the version field is ${problem.type}, not an integer (this build reads ${formatRange(supported)})`;
    case 'unsupported':
      return problem.version > supported.max
        ? `version ${problem.version} is newer than this build reads (${formatRange(supported)})`
        : `version ${problem.version} is older than this build reads (${formatRange(supported)})`;
  }
}

/**
 * A record or message whose version this build cannot read (far in the future, missing, or not
 * an integer). Nothing was written on its account. `subject` names it, e.g. the etcd key.
 */
export class VersionUnsupportedError extends CoordinatorError {
  readonly subject: string;
  readonly problem: VersionProblem;
  readonly supported: VersionRange;

  constructor(subject: string, problem: VersionProblem, supported: VersionRange) {
    super('VERSION_UNSUPPORTED', `${subject}: ${describeVersionProblem(problem, supported)}; nothing was read or written on its account`);
    this.subject = subject;
    this.problem = problem;
    this.supported = supported;
  }
}

/**
 * This build cannot run on the cluster as it is: its schema is outside the build's range, or a
 * live process is more than one release away. Raised at start-up, before anything is written.
 */
export class ProtocolMismatchError extends CoordinatorError {
  constructor(message: string) {
    super('VERSION_UNSUPPORTED', message);
  }
}
