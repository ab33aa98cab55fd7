/**
 * What cleaning up an orphan does, per op kind (pure: no I/O). The cleanup column of the state
 * machine (`OP_KINDS` in `src/state/state-machine.ts`) is the source; this module turns it into
 * the concrete final transition for one record, applies the `orphans.creatingAction` option, and
 * renders the table of `docs/cleanup.md` (a unit test keeps the page and this module in step).
 *
 * Every action ends in exactly one fenced transition made by the cleaner's incarnation, after it
 * claimed the op:
 * - `rerun`: the operation runs again through the worker's `OperationRunner` (locks, driver,
 *   final fenced write removing the op). Drivers are idempotent, so re-running a delete that
 *   had completed, or a create that had half-run, is safe;
 * - `final`: one fenced transition writes the status below and removes the op. Running it twice
 *   is impossible: the second finds no op (`op.exists` fails) and does nothing.
 */
import { afterOrphanedConnect, afterOrphanedDisconnect, type AttachmentRecord, attachmentsOf, maybeAttachmentOpParams } from '../state/attachments.js';
import type { AttachStatus, OpRecord, ResourceRecord, VolumeRecord } from '../state/records.js';
import { allows, type CleanupAction, OP_KINDS, type OpKind, opKindSpec, type OpKindSpec } from '../state/state-machine.js';

/** `orphans.creatingAction`: an orphaned create is marked `error` (Cinder) or re-run. */
export type CreatingAction = 'error' | 'resume';

export const CREATING_ACTIONS: readonly CreatingAction[] = ['error', 'resume'];

/** The fields a final cleanup transition sets. */
export interface FinalSet {
  readonly status: string;
  readonly attach_status?: AttachStatus;
  /** The volume's attachments after the cleanup (attach and detach ops). */
  readonly attachments?: readonly AttachmentRecord[];
  readonly previous_status?: null;
}

/** What to do with one claimed orphan. */
export type PlannedCleanup =
  | { readonly type: 'rerun' }
  | { readonly type: 'final'; readonly set: FinalSet };

function isCreate(kind: OpKind): boolean {
  return kind === 'create_volume' || kind === 'create_snapshot';
}

/** The cleanup action of an op kind, with `creatingAction` applied to creates. */
export function cleanupActionOf(kind: OpKind, creatingAction: CreatingAction): CleanupAction {
  if (isCreate(kind) && creatingAction === 'resume') return { type: 'rerun' };
  return opKindSpec(kind).cleanup;
}

/**
 * The cleanup of one orphan given its resource record as read after the claim. For a
 * `previous-status` action the record's `previous_status` is used when the state machine lets
 * cleanup go there, else the fallback; `attach_status` follows a volume back out of attaching
 * or detaching.
 */
export function planCleanup(op: OpRecord, record: ResourceRecord, creatingAction: CreatingAction): PlannedCleanup {
  const action = cleanupActionOf(op.kind, creatingAction);
  if (action.type === 'rerun') return { type: 'rerun' };
  const params = action.type === 'settle-attachments' ? maybeAttachmentOpParams(op.params) : undefined;
  if (params) {
    const attachments = attachmentsOf(record as VolumeRecord);
    return { type: 'final', set: op.kind === 'attach_volume' ? afterOrphanedConnect(attachments, params) : afterOrphanedDisconnect(attachments, params) };
  }
  let status: string;
  if (action.type === 'set-status') status = action.status;
  else if (action.type === 'settle-attachments') status = legacyStatus(op, record);
  else {
    const previous = record.previous_status;
    status = previous !== null && previous !== op.status && allows(op.type, op.status, previous, 'cleanup') ? previous : action.fallback;
  }
  return { type: 'final', set: { status, ...attachStatusAfter(op, record, status) } };
}

/** An attach or detach op that names no attachment (none of hearth's API records one): back where it came from. */
function legacyStatus(op: OpRecord, record: ResourceRecord): string {
  if (op.kind === 'detach_volume') return 'in-use';
  const previous = record.previous_status;
  return previous !== null && previous !== op.status && allows(op.type, op.status, previous, 'cleanup') ? previous : 'available';
}

function attachStatusAfter(op: OpRecord, record: ResourceRecord, status: string): { attach_status?: AttachStatus } {
  if (op.type !== 'volume') return {};
  const attach = (record as VolumeRecord).attach_status;
  if (attach !== 'attaching' && attach !== 'detaching') return {};
  return { attach_status: status === 'in-use' ? 'attached' : 'detached' };
}

const RERUN_HOW = 'OperationRunner.run(op, { reason: "cleanup" }) after the claim; the run ends in one fenced write';
const FINAL_HOW = 'one fenced transition that removes the op';

function describe(spec: OpKindSpec, action: CleanupAction): { action: string; endsIn: string; how: string } {
  switch (action.type) {
    case 'rerun':
      return isCreate(spec.kind)
        ? { action: 're-run the create (idempotent driver call, under its locks)', endsIn: 'available, or error if the driver fails', how: RERUN_HOW }
        : { action: 'delete again (idempotent driver call, under its locks)', endsIn: 'deleted, or error_deleting if the driver fails', how: RERUN_HOW };
    case 'set-status':
      return { action: `status → ${action.status}`, endsIn: action.status, how: FINAL_HOW };
    case 'previous-status':
      return {
        action: 'back to the previous status (attach_status follows)',
        endsIn: `previous_status when cleanup may go there (available, in-use), else ${action.fallback}`,
        how: FINAL_HOW,
      };
    case 'settle-attachments':
      return { action: 'settle the attachment (attach_status follows)', endsIn: action.doc, how: FINAL_HOW };
  }
}

/** The action table of `docs/cleanup.md`, one row per op kind. */
export function renderCleanupTable(): string {
  const rows = OP_KINDS.map((spec) => {
    const normal = describe(spec, spec.cleanup);
    if (!isCreate(spec.kind)) return `| ${spec.resource} | ${spec.status} | ${spec.kind} | ${normal.action} | ${normal.endsIn} | ${normal.how} |`;
    const resumed = describe(spec, { type: 'rerun' });
    const both = (a: string, b: string): string => `${a}; *resume:* ${b}`;
    return `| ${spec.resource} | ${spec.status} | ${spec.kind} | ${both(normal.action, resumed.action)} | ${both(normal.endsIn, resumed.endsIn)} | ${both(normal.how, resumed.how)} |`;
  });
  return ['| resource | status | op kind | cleanup action | ends in | how |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
