/**
 * Where one incarnation's fence stands, for the operator's views (orphans, members, fences):
 * pure, from its membership view and its fence operation.
 */
import type { EndHow, IncarnationView } from '../membership/incarnation-records.js';
import type { FenceOp } from './fence-queue.js';

/**
 * `alive`: nothing to fence. `ended`: its end is on record (left cleanly or fenced; takeovers
 * may go). `awaiting`: dead, its fence operation queued or failing (takeovers wait).
 * `not-requested`: dead, no fence operation yet (the next sweep or waiter requests one).
 */
export type FenceState =
  | { readonly state: 'alive' }
  | { readonly state: 'ended'; readonly how: EndHow; readonly by: string; readonly atMs: number }
  | { readonly state: 'awaiting'; readonly attempts: number; readonly lastError: string | null; readonly nextAttemptAtMs: number }
  | { readonly state: 'not-requested' };

/** See {@link FenceState}. */
export function fenceStateOf(view: IncarnationView, op: FenceOp | undefined): FenceState {
  if (view.end) return { state: 'ended', how: view.end.how, by: view.end.by, atMs: view.end.atMs };
  if (view.alive) return { state: 'alive' };
  if (op) return { state: 'awaiting', attempts: op.attempt, lastError: op.lastError, nextAttemptAtMs: op.nextAttemptAtMs };
  return { state: 'not-requested' };
}

/** One host's incarnations that are not alive: those still awaiting their fence, and the latest end. */
export interface HostFences {
  /** Dead incarnations without an end on record, oldest first: their orphans and locks wait. */
  readonly awaiting: readonly string[];
  /** The most recent end on record, if any. */
  readonly lastEnd: { readonly incarnation: string; readonly how: EndHow; readonly by: string; readonly atMs: number } | null;
}

/** {@link HostFences} per host, from every incarnation view kept. */
export function fencesByHost(views: readonly IncarnationView[]): Map<string, HostFences> {
  const byHost = new Map<string, { awaiting: { incarnation: string; joinedAtMs: number }[]; lastEnd: HostFences['lastEnd'] }>();
  for (const view of views) {
    const host = view.record?.host ?? view.end?.host;
    const incarnation = view.record?.incarnation ?? view.end?.incarnation;
    if (host === undefined || incarnation === undefined || view.alive) continue;
    let entry = byHost.get(host);
    if (!entry) byHost.set(host, (entry = { awaiting: [], lastEnd: null }));
    if (!view.end) entry.awaiting.push({ incarnation, joinedAtMs: view.record?.joinedAtMs ?? 0 });
    else if (!entry.lastEnd || view.end.atMs > entry.lastEnd.atMs) entry.lastEnd = { incarnation, how: view.end.how, by: view.end.by, atMs: view.end.atMs };
  }
  return new Map(
    [...byHost].map(([host, e]) => [host, { awaiting: e.awaiting.sort((a, b) => a.joinedAtMs - b.joinedAtMs).map((a) => a.incarnation), lastEnd: e.lastEnd }]),
  );
}
