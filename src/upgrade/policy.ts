/**
 * The upgrade rules as pure functions of the live processes and the schema state: which message
 * version a cluster gets, who pins it, what blocks raising the schema, whether a build may start,
 * and since when a cluster has run mixed releases (no I/O; `docs/upgrades.md`).
 */
import { formatRange, highestCommon, inRange, type ProtocolSupport, skewProblem, type VersionRange } from '../protocol.js';
import { type LiveProcess, recordFloor, type SchemaState } from './records.js';

/** A cluster's message version and the live processes that hold it below this build's newest. */
export interface NegotiatedVersion {
  readonly version: number;
  readonly pinnedBy: readonly LiveProcess[];
}

/**
 * The processes whose reading range decides a message's version: the workers of `host` for a
 * host-directed message; otherwise every live process of `cluster` (workers and API-only alike);
 * every live process when the cluster has none (a queued job waits for whoever comes).
 */
function readersOf(processes: readonly LiveProcess[], cluster: string, host?: string): readonly LiveProcess[] {
  if (host !== undefined) {
    const own = processes.filter((p) => p.host === host && p.roles.includes('worker'));
    if (own.length > 0) return own;
  }
  const members = processes.filter((p) => p.cluster === cluster);
  return members.length > 0 ? members : processes;
}

/**
 * The highest message version this build (`own`) writes that every live reader of `cluster`
 * reads. Dead processes have no presence, so they never pin; with no reader at all, this build's
 * newest. When the readers share no version with `own` (the skew policy keeps that from
 * happening), the oldest `own` writes.
 */
export function negotiateMessages(own: VersionRange, processes: readonly LiveProcess[], cluster: string, host?: string): NegotiatedVersion {
  const readers = readersOf(processes, cluster, host);
  const version = highestCommon(own, readers.map((p) => p.messages)) ?? own.min;
  return { version, pinnedBy: version < own.max ? readers.filter((p) => p.messages.max === version) : [] };
}

/**
 * The message version every live worker of `cluster` reads: the API accepts an operation, or
 * serves a microversion, that needs a later version only once this reaches it (the skew
 * policy's "when every worker supports it"). With no live worker, this build's newest.
 */
export function workerMessageVersion(own: VersionRange, processes: readonly LiveProcess[], cluster: string): number {
  const workers = processes.filter((p) => p.cluster === cluster && p.roles.includes('worker'));
  return highestCommon(own, workers.map((p) => p.messages)) ?? own.min;
}

/** The live processes that could not read records of schema `target`. */
export function schemaBlockers(target: number, processes: readonly LiveProcess[]): LiveProcess[] {
  return processes.filter((p) => !inRange(target, p.schema));
}

/**
 * Why a build (`own`, package version `build`) may not start on the cluster as it is: the
 * schema is outside its range, a data migration it depends on is unfinished, or a live process
 * is more than one release away. Empty when it may start.
 */
export function startProblems(own: ProtocolSupport, build: string, schema: Pick<SchemaState, 'version' | 'migration'>, processes: readonly LiveProcess[]): string[] {
  const problems: string[] = [];
  if (schema.version > own.schema.max) {
    problems.push(
      `the cluster's record schema is ${schema.version}, and this build (hearth ${build}) reads and writes schemas ${formatRange(own.schema)}: it cannot read what the cluster writes now. ` +
        `Run a release that supports schema ${schema.version} (the schema was finalized, so the previous release can no longer run)`,
    );
  } else if (schema.version < own.schema.min) {
    problems.push(
      `the cluster's record schema is ${schema.version}, and this build (hearth ${build}) reads and writes schemas ${formatRange(own.schema)}: ` +
        `upgrade to the release in between first and run \`hearth upgrade finalize\` with it`,
    );
  } else if (recordFloor(schema) < own.schema.min) {
    problems.push(
      `the data migration to record schema ${schema.version} has not finished (records of schema ${recordFloor(schema)} remain), and this build (hearth ${build}) reads schemas ${formatRange(own.schema)}: ` +
        `let the previous release finish it (\`hearth upgrade finalize\` resumes it)`,
    );
  }
  for (const p of processes) {
    const why = skewProblem(own, p);
    if (why) problems.push(`process ${p.id} (hearth ${p.build}) is alive, and ${why}`);
  }
  return problems;
}

/**
 * Since when (epoch ms) the live processes of one cluster have run more than one release:
 * the start of the earliest live process of the release that joined last. Null when they run
 * one release (or none).
 */
export function mixedSince(processes: readonly LiveProcess[]): number | null {
  const firstByBuild = new Map<string, number>();
  for (const p of processes) firstByBuild.set(p.build, Math.min(firstByBuild.get(p.build) ?? Number.POSITIVE_INFINITY, p.startedAtMs));
  return firstByBuild.size < 2 ? null : Math.max(...firstByBuild.values());
}

/** What raising the schema to `target` waits for; empty `reasons` when it may go ahead. */
export interface FinalizeCheck {
  readonly target: number;
  readonly blockedBy: readonly LiveProcess[];
  readonly reasons: readonly string[];
}

/**
 * Whether the schema may be raised from `schema` to `target` by a process of range `own`: one
 * step at a time, only once the previous migration is done, never beyond what this build writes,
 * and never while a live process could not read `target`.
 */
export function finalizeCheck(own: ProtocolSupport, schema: SchemaState, processes: readonly LiveProcess[], target = schema.version + 1): FinalizeCheck {
  const reasons: string[] = [];
  if (target !== schema.version + 1) reasons.push(`the schema moves one version at a time: it is ${schema.version}, so the next is ${schema.version + 1}`);
  if (target > own.schema.max) reasons.push(`this process (schemas ${formatRange(own.schema)}) cannot write schema ${target}: run finalize through a newer release`);
  if (schema.migration && !schema.migration.done) reasons.push(`the data migration to schema ${schema.version} has not finished`);
  const blockedBy = schemaBlockers(target, processes);
  for (const p of blockedBy) reasons.push(`process ${p.id} (hearth ${p.build}, ${p.roles.join('+')}) reads schemas ${formatRange(p.schema)}`);
  return { target, blockedBy, reasons };
}
