/**
 * The pure core of every store write: given what the adapter read (the record, its op record,
 * the number of a volume's snapshots) and the request, decide the conditions' outcome and the
 * exact records to write. Both adapters call these functions and differ only in how they read
 * and commit atomically, so both enforce the same conditions, state machine and invariants.
 */
import { randomUUID } from 'node:crypto';
import { InvalidInputError, InvalidTransitionError } from '../errors.js';
import { type Expect, type FailedCondition, firstFailure } from './expect.js';
import { heldSourceOf, type OpRecord, type ResourceRecord, type ResourceRef, type ResourceType, type Unrevisioned } from './records.js';
import { allows, assertTransition, DELETED, isKnownStatus, isTransitional, opKindSpec } from './state-machine.js';
import {
  type CreateRequest,
  isFieldRef,
  type NewOp,
  type OpUpdateRequest,
  type RemoveRequest,
  type TransitionRequest,
} from './state-store.js';

/** What an adapter read before deciding. */
export interface Observed<R> {
  readonly record: R | undefined;
  readonly op: OpRecord | undefined;
  /** Snapshots of the volume; read only when a condition names `snapshots`. */
  readonly children?: number;
  /** Volumes whose copy holds this resource as their source; read only when a condition names `holds`. */
  readonly holds?: number;
}

/** The records to write; `null` deletes, `keep` leaves the op record as it is. */
export interface Write<R> {
  readonly record: Unrevisioned<R> | null;
  readonly op: Unrevisioned<OpRecord> | null | 'keep';
}

/** A decision: a failed condition (contention, a value) or the write to commit. */
export type Plan<R> = { readonly failed: FailedCondition } | { readonly write: Write<R> };

/** Fields a patch may not set (identity and the store's own stamps). */
const FIXED = new Set(['id', 'revision', 'created_at', 'updated_at', 'project_id', 'volume_id']);

/** Optional fields a patch may set on a record that lacks them (records.ts says why they are optional). */
const OPTIONAL = new Set(['updated_by', 'attachments', 'volume_type_id']);

const fail = (field: string, expected: unknown, actual: unknown): { failed: FailedCondition } => ({ failed: { field, expected, actual } });

/** The fields conditions may name on a resource (the record itself unless children or holds are counted). */
export function resourceView(record: ResourceRecord, children?: number, holds?: number): Readonly<Record<string, unknown>> {
  if (children === undefined && holds === undefined) return record as unknown as Record<string, unknown>;
  return { ...record, ...(children === undefined ? {} : { snapshots: children }), ...(holds === undefined ? {} : { holds }) };
}

/** The fields conditions may name on an op record (`owner` is the owner's incarnation). */
export function opView(op: OpRecord): Record<string, unknown> {
  return { ...op, owner: op.owner?.incarnation ?? null, ownerHost: op.owner?.host ?? null };
}

/** True when a condition names `snapshots`, so the adapter must count them. */
export function needsChildren(type: ResourceType, expect: Expect): boolean {
  return type === 'volume' && expect.snapshots !== undefined;
}

/** True when a condition names `holds` (the copies reading the resource), so the adapter must count them. */
export function needsHolds(expect: Expect): boolean {
  return expect.holds !== undefined;
}

/**
 * A volume's copy stops holding its source when the volume leaves `creating` for anything but
 * `deleting` (a force-delete of a copy in flight keeps the hold until its delete ends, because
 * the copy it replaced may still be winding down): the store keeps `source_held` by this rule
 * alone, so every path out of a copy — the worker, cleanup, an admin's reset — releases it.
 */
function releasesHold(record: Record<string, unknown>): boolean {
  return record.source_held === true && record.status !== 'creating' && record.status !== 'deleting';
}

function stripRevision<R extends { revision: string }>(record: R): Unrevisioned<R> {
  const { revision: _revision, ...rest } = record;
  return rest;
}

function checkOp(observed: Observed<unknown>, expectOp: Expect | undefined): FailedCondition | undefined {
  if (expectOp === undefined) return undefined;
  if (!observed.op) return { field: 'op.exists', expected: true, actual: false };
  return firstFailure(opView(observed.op), expectOp, 'op.');
}

function newOp(ref: ResourceRef, status: string, cluster: string, spec: NewOp, now: number): Unrevisioned<OpRecord> {
  const kind = opKindSpec(spec.kind);
  if (kind.resource !== ref.type || kind.status !== status) {
    throw new InvalidTransitionError(ref.type, status, status, `an op of kind ${spec.kind} cannot hold a ${ref.type} in ${status}`);
  }
  return {
    type: ref.type,
    id: ref.id,
    opId: spec.opId ?? randomUUID(),
    kind: spec.kind,
    status,
    cluster,
    owner: null,
    attempt: 0,
    params: { ...(spec.params ?? {}) },
    createdAt: now,
    updatedAt: now,
    publishedAt: null,
  };
}

/** Keeps the invariant: transitional status ⇔ an op record holding exactly that status. */
function checkInvariant(type: ResourceType, from: string, status: string, op: Unrevisioned<OpRecord> | null): void {
  if (isTransitional(type, status) && (op === null || op.status !== status)) {
    throw new InvalidTransitionError(type, from, status, `a ${type} in ${status} needs an op record holding ${status} (pass op: { create })`);
  }
  if (!isTransitional(type, status) && op !== null) {
    throw new InvalidTransitionError(type, from, status, `a ${type} in ${status} must not keep the op record of ${op.kind} (pass op: 'remove')`);
  }
}

function applyPatch<R extends ResourceRecord>(current: R, patch: Readonly<Record<string, unknown>>, now: number): Unrevisioned<R> {
  const next: Record<string, unknown> = { ...stripRevision(current), updated_at: now };
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (FIXED.has(field) || !(field in current || OPTIONAL.has(field))) throw new InvalidInputError(`a transition cannot set ${field}`);
    next[field] = isFieldRef(value) ? (current as unknown as Record<string, unknown>)[value.field] : value;
  }
  return next as Unrevisioned<R>;
}

/** Decides a {@link TransitionRequest}. */
export function planTransition<R extends ResourceRecord>(
  ref: ResourceRef,
  observed: Observed<R>,
  request: TransitionRequest<R>,
  now: number,
): Plan<R> {
  const current = observed.record;
  if (!current) return fail('exists', true, false);
  const failed = firstFailure(resourceView(current, observed.children, observed.holds), request.expect) ?? checkOp(observed, request.expectOp);
  if (failed) return { failed };
  const patched = applyPatch(current, (request.set ?? {}) as Record<string, unknown>, now);
  const record = releasesHold(patched) ? ({ ...patched, source_held: false } as Unrevisioned<R>) : patched;
  if (!isKnownStatus(ref.type, record.status)) {
    throw new InvalidTransitionError(ref.type, current.status, record.status, `${record.status} is not a ${ref.type} status`);
  }
  assertTransition(ref.type, current.status, record.status, request.by);
  const change = request.op;
  let op: Unrevisioned<OpRecord> | null = observed.op ?? null;
  if (change === 'remove') op = null;
  else if (change !== undefined && 'create' in change) {
    if (observed.op) return fail('op.exists', false, true);
    op = newOp(ref, record.status, record.cluster, change.create, now);
  } else if (change !== undefined && 'replace' in change) {
    // The old op's owner can write nothing more: its every write expects its own opId.
    op = newOp(ref, record.status, record.cluster, change.replace, now);
  } else if (change !== undefined) {
    if (!op) return fail('op.exists', true, false);
    op = { ...stripRevision(op as OpRecord), ...change.update, updatedAt: now };
  }
  checkInvariant(ref.type, current.status, record.status, op);
  return { write: { record, op: change === undefined ? 'keep' : op } };
}

/** Decides a {@link CreateRequest}; `parent` is what was read of the parent, if any. */
export function planCreate<R extends ResourceRecord>(
  ref: ResourceRef,
  observed: Observed<R>,
  request: CreateRequest<R>,
  now: number,
  parent?: ResourceRecord,
): Plan<R> {
  if (observed.record) return fail('exists', false, true);
  if (observed.op) return fail('op.exists', false, true);
  if (request.parent) {
    const prefix = `${request.parent.ref.type}.`;
    if (!parent) return fail(`${prefix}exists`, true, false);
    const failed = firstFailure(resourceView(parent), request.parent.expect, prefix);
    if (failed) return { failed };
  }
  const held = heldSourceOf(request.record as unknown as ResourceRecord);
  if (held && (request.parent?.ref.type !== held.type || request.parent.ref.id !== held.id)) {
    // The source is the parent: its revision must change with the hold, or a delete could miss it.
    throw new InvalidInputError(`a ${ref.type} that holds ${held.type} ${held.id} must name it as its parent`);
  }
  const status = request.record.status;
  if (!allows(ref.type, null, status, 'api')) {
    throw new InvalidTransitionError(ref.type, '(absent)', status, `a new ${ref.type} cannot start in ${status}`);
  }
  const record = { ...request.record, id: ref.id, created_at: now, updated_at: null } as unknown as Unrevisioned<R>;
  const op = request.op ? newOp(ref, status, request.record.cluster, request.op, now) : null;
  checkInvariant(ref.type, '(absent)', status, op);
  return { write: { record, op } };
}

/** Decides a {@link RemoveRequest}. */
export function planRemove<R extends ResourceRecord>(ref: ResourceRef, observed: Observed<R>, request: RemoveRequest): Plan<R> {
  const current = observed.record;
  if (!current) return fail('exists', true, false);
  const failed = firstFailure(resourceView(current, observed.children, observed.holds), request.expect) ?? checkOp(observed, request.expectOp);
  if (failed) return { failed };
  assertTransition(ref.type, current.status, DELETED, request.by);
  return { write: { record: null, op: null } };
}

/** Decides an {@link OpUpdateRequest}. */
export function planOpUpdate(op: OpRecord | undefined, request: OpUpdateRequest, now: number): { failed: FailedCondition } | { op: Unrevisioned<OpRecord> } {
  if (!op) return fail('op.exists', true, false);
  const failed = firstFailure(opView(op), request.expect, 'op.');
  if (failed) return { failed };
  const set = request.set;
  if (set.attempt !== undefined && (!Number.isInteger(set.attempt) || set.attempt < 0)) {
    throw new InvalidInputError(`op attempt must be a non-negative integer, got ${set.attempt}`);
  }
  return { op: { ...stripRevision(op), ...set, updatedAt: now } };
}
