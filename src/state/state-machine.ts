/**
 * The volume and snapshot state machines: which statuses exist, which are transitional (a
 * worker must finish them, so an op record tracks them), and which status changes each actor
 * may make. Pure: no I/O. `docs/state.md` shows the tables rendered by
 * {@link renderTransitionTable}; a test keeps the two in step.
 *
 * Actors:
 * - `api`: a user request (delete, extend, attach, …) moves a resource into a transitional status
 *   (or rolls one back, as Cinder's unreserve and roll_detaching do);
 * - `worker`: the worker that owns the op finishes it (success or failure);
 * - `cleanup`: a live member cleans an orphaned op (its owner died);
 * - `admin`: `os-reset_status` sets any status that needs no worker. hearth refuses to reset
 *   into a transitional status, because no op would ever finish it.
 */
import { InvalidTransitionError } from '../errors.js';

/** Who makes a status change. */
export type Actor = 'api' | 'worker' | 'cleanup' | 'admin';

export const ACTORS: readonly Actor[] = ['api', 'worker', 'cleanup', 'admin'];

/** Cinder's volume statuses that hearth knows. */
export const VOLUME_STATUSES = [
  'creating',
  'available',
  'reserved',
  'attaching',
  'in-use',
  'detaching',
  'maintenance',
  'extending',
  'deleting',
  'error',
  'error_deleting',
  'error_extending',
  'error_restoring',
  'error_managing',
] as const;
export type VolumeStatus = (typeof VOLUME_STATUSES)[number];

/** Cinder's snapshot statuses that hearth knows. */
export const SNAPSHOT_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting'] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

/** The pseudo-status a resource reaches when its record is removed; never stored. */
export const DELETED = 'deleted';

/** One kind of operation per transitional status. */
export type OpKind =
  | 'create_volume'
  | 'delete_volume'
  | 'extend_volume'
  | 'attach_volume'
  | 'detach_volume'
  | 'create_snapshot'
  | 'delete_snapshot'
  | 'clone_volume'
  | 'create_volume_from_snapshot';

/** The op kinds that copy another resource (the source) into a new volume; see `docs/state.md` "Sources". */
export const COPY_KINDS: readonly OpKind[] = ['clone_volume', 'create_volume_from_snapshot'];

/** What cleaning up an orphaned op of a kind does. */
export type CleanupAction =
  | { readonly type: 'rerun' }
  | { readonly type: 'set-status'; readonly status: string }
  | { readonly type: 'previous-status'; readonly fallback: string }
  /**
   * The attachment the op worked on returns to a resting state and the volume's status follows
   * its attachments (`attachments.ts`: an orphaned attach leaves its attachment `reserved`, an
   * orphaned detach leaves it as it was). `doc` says where that usually ends.
   */
  | { readonly type: 'settle-attachments'; readonly doc: string };

/** An op kind: its resource, the transitional status it holds, and how an orphan is cleaned. */
export interface OpKindSpec {
  readonly kind: OpKind;
  readonly resource: 'volume' | 'snapshot';
  readonly status: string;
  readonly cleanup: CleanupAction;
}

/** Every op kind hearth has (DESIGN: every transitional status is tracked). */
export const OP_KINDS: readonly OpKindSpec[] = [
  { kind: 'create_volume', resource: 'volume', status: 'creating', cleanup: { type: 'set-status', status: 'error' } },
  { kind: 'delete_volume', resource: 'volume', status: 'deleting', cleanup: { type: 'rerun' } },
  { kind: 'extend_volume', resource: 'volume', status: 'extending', cleanup: { type: 'set-status', status: 'error_extending' } },
  {
    kind: 'attach_volume',
    resource: 'volume',
    status: 'attaching',
    cleanup: { type: 'settle-attachments', doc: 'the attachment back to reserved, unconnected: the volume reserved (in-use when another attachment is attached)' },
  },
  {
    kind: 'detach_volume',
    resource: 'volume',
    status: 'detaching',
    cleanup: { type: 'settle-attachments', doc: 'the attachment kept as it was before: the volume in-use (reserved when it was never completed)' },
  },
  { kind: 'create_snapshot', resource: 'snapshot', status: 'creating', cleanup: { type: 'set-status', status: 'error' } },
  { kind: 'delete_snapshot', resource: 'snapshot', status: 'deleting', cleanup: { type: 'rerun' } },
  // A copy holds the new volume in `creating` as a plain create does; leaving it releases the source's hold.
  { kind: 'clone_volume', resource: 'volume', status: 'creating', cleanup: { type: 'set-status', status: 'error' } },
  { kind: 'create_volume_from_snapshot', resource: 'volume', status: 'creating', cleanup: { type: 'set-status', status: 'error' } },
];

/** One allowed status change. `from: null` is the creation of the resource. */
export interface Edge {
  readonly from: string | null;
  readonly to: string;
  readonly by: Actor;
  /** What the change means, e.g. `delete`, `extend succeeded`. */
  readonly action: string;
  /**
   * An admin's force (`os-force_delete`): allowed, but not a source of the plain request —
   * {@link sourcesOf} leaves it out unless asked.
   */
  readonly forced?: boolean;
}

/** A resource's state machine. */
export interface StateMachine {
  readonly resource: 'volume' | 'snapshot';
  readonly statuses: readonly string[];
  readonly transitional: ReadonlySet<string>;
  /** The explicit edges; `admin` edges are computed (see {@link allows}). */
  readonly edges: readonly Edge[];
}

function edges(by: Actor, action: string, from: readonly (string | null)[], to: string): Edge[] {
  return from.map((f) => ({ from: f, to, by, action }));
}

/** `os-force_delete`: from every status but `to` itself (which needs no edge). */
function forced(statuses: readonly string[], to: string): Edge[] {
  return statuses.filter((s) => s !== to).map((from) => ({ from, to, by: 'api' as const, action: 'force delete', forced: true }));
}

const VOLUME_EDGES: readonly Edge[] = [
  ...edges('api', 'create', [null], 'creating'),
  ...edges('api', 'create from a source (clone, snapshot): holds the source', [null], 'creating'),
  ...edges('api', 'delete', ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'], 'deleting'),
  ...edges('api', 'extend', ['available', 'in-use'], 'extending'),
  ...edges('api', 'reserve (legacy attach)', ['available', 'in-use'], 'attaching'),
  ...edges('api', 'unreserve', ['attaching'], 'available'),
  ...edges('api', 'unreserve', ['attaching'], 'in-use'),
  ...edges('api', 'attachment reserve', ['available'], 'reserved'),
  ...edges('api', 'attachment update', ['reserved'], 'attaching'),
  ...edges('api', 'attachment delete', ['reserved'], 'available'),
  ...edges('api', 'begin detaching', ['in-use'], 'detaching'),
  ...edges('api', 'roll detaching', ['detaching'], 'in-use'),
  // The attachment API (3.27+): `attachments.ts` says how the status follows the attachments.
  ...edges('api', 'attachment reserve (multiattach volume)', ['in-use'], 'reserved'),
  ...edges('api', 'attachment create with a connector', ['available', 'in-use'], 'attaching'),
  ...edges('api', 'attachment complete', ['reserved'], 'in-use'),
  ...edges('api', 'attachment delete (connected) or os-force_detach', ['in-use', 'reserved'], 'detaching'),
  ...edges('worker', 'create succeeded', ['creating'], 'available'),
  ...edges('worker', 'create failed', ['creating'], 'error'),
  ...edges('worker', 'delete succeeded', ['deleting'], DELETED),
  ...edges('worker', 'delete failed', ['deleting'], 'error_deleting'),
  ...edges('worker', 'extend succeeded', ['extending'], 'available'),
  ...edges('worker', 'extend succeeded', ['extending'], 'in-use'),
  ...edges('worker', 'extend failed', ['extending'], 'error_extending'),
  ...edges('worker', 'attach succeeded', ['attaching'], 'in-use'),
  ...edges('worker', 'attach failed', ['attaching'], 'available'),
  ...edges('worker', 'detach succeeded', ['detaching'], 'available'),
  ...edges('worker', 'detach succeeded (other attachments remain) or failed', ['detaching'], 'in-use'),
  ...edges('worker', 'connection made or refused (attachment not completed yet)', ['attaching'], 'reserved'),
  ...edges('worker', 'detach succeeded or failed (an attachment not completed remains)', ['detaching'], 'reserved'),
  ...edges('cleanup', 'orphaned create', ['creating'], 'error'),
  ...edges('cleanup', 'orphaned delete re-run', ['deleting'], DELETED),
  ...edges('cleanup', 'orphaned delete re-run failed', ['deleting'], 'error_deleting'),
  ...edges('cleanup', 'orphaned extend', ['extending'], 'error_extending'),
  ...edges('cleanup', 'orphaned attach: back to the previous status', ['attaching'], 'available'),
  ...edges('cleanup', 'orphaned attach: back to the previous status', ['attaching'], 'in-use'),
  ...edges('cleanup', 'orphaned detach: still attached', ['detaching'], 'in-use'),
  ...edges('cleanup', 'orphaned attach: the attachment reserved again', ['attaching'], 'reserved'),
  ...edges('cleanup', 'orphaned detach: the attachment as it was (never completed)', ['detaching'], 'reserved'),
  ...edges('worker', 'extend refused: no room in the pool (previous status)', ['extending'], 'available'),
  ...edges('worker', 'extend refused: no room in the pool (previous status)', ['extending'], 'in-use'),
  ...edges('worker', 'create refused: no room in the pool', ['creating'], 'error'),
  ...edges('worker', 'copy from a source succeeded: the source\'s hold released', ['creating'], 'available'),
  ...edges('worker', 'copy from a source failed: the source\'s hold released', ['creating'], 'error'),
  ...edges('cleanup', 'orphaned copy from a source: the source\'s hold released', ['creating'], 'error'),
  ...forced(VOLUME_STATUSES, 'deleting'),
];

const SNAPSHOT_EDGES: readonly Edge[] = [
  ...edges('api', 'create', [null], 'creating'),
  ...edges('api', 'delete', ['available', 'error'], 'deleting'),
  ...edges('worker', 'create succeeded', ['creating'], 'available'),
  ...edges('worker', 'create failed', ['creating'], 'error'),
  ...edges('worker', 'delete succeeded', ['deleting'], DELETED),
  ...edges('worker', 'delete failed', ['deleting'], 'error_deleting'),
  ...edges('cleanup', 'orphaned create', ['creating'], 'error'),
  ...edges('cleanup', 'orphaned delete re-run', ['deleting'], DELETED),
  ...edges('cleanup', 'orphaned delete re-run failed', ['deleting'], 'error_deleting'),
  ...forced(SNAPSHOT_STATUSES, 'deleting'),
];

function transitionalOf(resource: 'volume' | 'snapshot'): ReadonlySet<string> {
  return new Set(OP_KINDS.filter((k) => k.resource === resource).map((k) => k.status));
}

export const VOLUME_MACHINE: StateMachine = {
  resource: 'volume',
  statuses: VOLUME_STATUSES,
  transitional: transitionalOf('volume'),
  edges: VOLUME_EDGES,
};

export const SNAPSHOT_MACHINE: StateMachine = {
  resource: 'snapshot',
  statuses: SNAPSHOT_STATUSES,
  transitional: transitionalOf('snapshot'),
  edges: SNAPSHOT_EDGES,
};

/** The machine of a resource type. */
export function machineFor(resource: 'volume' | 'snapshot'): StateMachine {
  return resource === 'volume' ? VOLUME_MACHINE : SNAPSHOT_MACHINE;
}

/** True for a status hearth knows for this resource type (not `deleted`). */
export function isKnownStatus(resource: 'volume' | 'snapshot', status: string): boolean {
  return machineFor(resource).statuses.includes(status);
}

/** True when the status needs a worker to leave it, so an op record must track it. */
export function isTransitional(resource: 'volume' | 'snapshot', status: string): boolean {
  return machineFor(resource).transitional.has(status);
}

/** The op kind that holds a resource in a transitional status. */
export function opKindFor(resource: 'volume' | 'snapshot', status: string): OpKindSpec | undefined {
  return OP_KINDS.find((k) => k.resource === resource && k.status === status);
}

/** The spec of an op kind. */
export function opKindSpec(kind: OpKind): OpKindSpec {
  const spec = OP_KINDS.find((k) => k.kind === kind);
  if (!spec) throw new Error(`unknown op kind ${kind}`);
  return spec;
}

/**
 * True when `by` may change a resource from `from` (null: creation) to `to` (`deleted`: the
 * record is removed). Keeping the status unchanged is not a transition and always allowed.
 */
export function allows(resource: 'volume' | 'snapshot', from: string | null, to: string, by: Actor): boolean {
  const machine = machineFor(resource);
  if (from !== null && from === to && machine.statuses.includes(from)) return true;
  if (by === 'admin') {
    return from !== null && machine.statuses.includes(from) && machine.statuses.includes(to) && !machine.transitional.has(to);
  }
  return machine.edges.some((e) => e.from === from && e.to === to && e.by === by);
}

/** Throws {@link InvalidTransitionError} unless {@link allows}. */
export function assertTransition(resource: 'volume' | 'snapshot', from: string | null, to: string, by: Actor): void {
  if (!allows(resource, from, to, by)) {
    throw new InvalidTransitionError(
      resource,
      from ?? '(absent)',
      to,
      `${by} cannot move a ${resource} from ${from ?? '(absent)'} to ${to}`,
    );
  }
}

/**
 * The statuses from which `by` may move a resource to `to`, in table order (for `expect`);
 * forced edges (an admin's `os-force_delete`) only with `forced`.
 */
export function sourcesOf(resource: 'volume' | 'snapshot', to: string, by: Actor, options: { readonly forced?: boolean } = {}): string[] {
  const from = machineFor(resource)
    .edges.filter((e) => e.to === to && e.by === by && e.from !== null && (options.forced === true || e.forced !== true))
    .map((e) => e.from as string);
  return [...new Set(from)];
}

/** The statuses `os-reset_status` may set (every status that needs no worker). */
export function resettableStatuses(resource: 'volume' | 'snapshot'): string[] {
  const machine = machineFor(resource);
  return machine.statuses.filter((s) => !machine.transitional.has(s));
}

/** The transition table as Markdown, for `docs/state.md`. */
export function renderTransitionTable(resource: 'volume' | 'snapshot'): string {
  const machine = machineFor(resource);
  const rows = machine.edges.filter((e) => e.forced !== true).map((e) => `| ${e.from ?? '(new)'} | ${e.to} | ${e.by} | ${e.action} |`);
  // Forced edges leave every status for one: one row each.
  const forcedTo = [...new Set(machine.edges.filter((e) => e.forced === true).map((e) => `| any | ${e.to} | ${e.by} | ${e.action} (os-force_delete) |`))];
  const admin = `| any | ${resettableStatuses(resource).join(', ')} | admin | os-reset_status |`;
  return ['| from | to | by | action |', '|---|---|---|---|', ...rows, ...forcedTo, admin].join('\n');
}

/** The op kinds as Markdown, for `docs/state.md`. */
export function renderOpKindTable(): string {
  const cleanup = (c: CleanupAction): string =>
    c.type === 'rerun'
      ? 're-run the operation'
      : c.type === 'set-status'
        ? `status → ${c.status}`
        : c.type === 'previous-status'
          ? `back to previous_status (else ${c.fallback})`
          : c.doc;
  const rows = OP_KINDS.map((k) => `| ${k.kind} | ${k.resource} | ${k.status} | ${cleanup(k.cleanup)} |`);
  return ['| kind | resource | status | cleanup of an orphan |', '|---|---|---|---|', ...rows].join('\n');
}
