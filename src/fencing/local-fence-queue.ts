import { FencedError } from '../errors.js';
import type { Fence } from '../fence.js';
import type { Member } from '../membership/membership.js';
import { type FenceOp, type FenceQueue, type FenceRequest, type FenceWrite, seenLive } from './fence-queue.js';

/**
 * Fence operations of the single node, in memory. The only incarnations a single node ever
 * fences are earlier runs of its own process; a restart forgets pending operations, and the
 * fence runner asks for them again (every orphan's owner without an end record needs one).
 */
export class LocalFenceQueue implements FenceQueue {
  private readonly ops = new Map<string, FenceOp>();
  private revision = 0;

  constructor(private readonly now: () => number) {}

  async request(request: FenceRequest): Promise<FenceOp> {
    const existing = this.ops.get(request.incarnation);
    const upgraded = existing && seenLive(existing, request);
    if (upgraded) {
      const op = { ...upgraded, revision: this.next() };
      this.ops.set(op.incarnation, op);
      return op;
    }
    if (existing) return existing;
    const op: FenceOp = { ...request, requestedAtMs: this.now(), owner: null, attempt: 0, failures: 0, lastError: null, nextAttemptAtMs: 0, revision: this.next() };
    this.ops.set(op.incarnation, op);
    return op;
  }

  async get(incarnation: string): Promise<FenceOp | undefined> {
    return this.ops.get(incarnation);
  }

  async list(): Promise<FenceOp[]> {
    return [...this.ops.values()];
  }

  async claim(op: FenceOp, me: Member, fence: Fence): Promise<FenceWrite> {
    return this.swap(op, { ...op, owner: me.owner, attempt: op.attempt + 1 }, fence);
  }

  async failed(op: FenceOp, me: Member, reason: string, nextAttemptAtMs: number, postponed = false): Promise<FenceWrite> {
    return this.swap(op, { ...op, lastError: reason.slice(0, 500), nextAttemptAtMs, failures: op.failures + (postponed ? 0 : 1) }, me.fence());
  }

  async remove(incarnation: string): Promise<void> {
    this.ops.delete(incarnation);
  }

  private swap(op: FenceOp, next: FenceOp, fence: Fence): FenceWrite {
    const current = this.ops.get(op.incarnation);
    if (!current) return { ok: false, reason: 'gone' };
    if (current.revision !== op.revision) return { ok: false, reason: 'conflict' };
    if (!fence.holds()) throw new FencedError('holds()', fence.description);
    const written = { ...next, revision: this.next() };
    this.ops.set(op.incarnation, written);
    return { ok: true, op: written };
  }

  private next(): string {
    this.revision += 1;
    return String(this.revision);
  }
}
