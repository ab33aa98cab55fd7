/**
 * The pure core of fencing: given a fence operation and what the records say of its
 * incarnation now, what to do. No I/O, no clock of its own.
 */
import { isSameProcess, type ProcessIdentity } from '../identity.js';
import type { IncarnationView } from '../membership/incarnation-records.js';
import type { FenceOp } from './fence-queue.js';

/** What to do with one fence operation. */
export type FencePlan =
  /** Its end is on record (fenced, or it left cleanly), or it is alive after all: drop the operation. */
  | { readonly type: 'done'; readonly why: 'ended' | 'alive' }
  /** Not yet: the process may fence itself; look again after `waitMs`. */
  | { readonly type: 'wait'; readonly reason: string; readonly waitMs: number }
  /** Fence it now. */
  | { readonly type: 'fence' };

/**
 * A death a live member saw happen is fenced at once. One found later — this member was cut off
 * itself, as every member is in an etcd quorum loss — may belong to a process that lives on and
 * will fence its earlier incarnation itself as soon as its runs settle; an outside fence then
 * waits `selfFenceGraceMs` after the death, so that a quorum loss does not make the members
 * fence each other. An earlier incarnation of the planning process itself is never fenced from
 * here: its own supervisor records it once its runs settle (or, if they never do, another
 * member fences the process).
 */
export function planFence(op: FenceOp, view: IncarnationView, nowMs: number, selfFenceGraceMs: number, self?: ProcessIdentity): FencePlan {
  if (view.end) return { type: 'done', why: 'ended' };
  if (view.alive) return { type: 'done', why: 'alive' };
  // Never from outside on itself: this process fences its own earlier incarnation once its runs settle.
  if (isSameProcess(view.record?.process, self)) return { type: 'wait', reason: 'an earlier incarnation of this very process: it fences itself once its runs settle', waitMs: Math.max(selfFenceGraceMs, 1_000) };
  const graceLeft = op.diedAtMs + selfFenceGraceMs - nowMs;
  if (!op.observedLive && graceLeft > 0) return { type: 'wait', reason: 'its death was not seen live: waiting for its process to fence itself', waitMs: graceLeft };
  return { type: 'fence' };
}
