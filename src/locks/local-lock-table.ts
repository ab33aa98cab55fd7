import { byName, hostOfIncarnation, type LockEntry, type LockTable } from './lock-table.js';
import type { LocalLockService } from './local-lock-service.js';

/**
 * A single node's locks: the in-process lock service's own table (there is no other holder).
 * `service()` is undefined until the worker made its lock service (an API-only process, or
 * before the worker started): then nothing is held.
 *
 * Failure semantics: none; it reads memory.
 */
export class LocalLockTable implements LockTable {
  readonly distributed = false;

  constructor(private readonly service: () => LocalLockService | undefined) {}

  list(): Promise<LockEntry[]> {
    const locks = this.service();
    if (!locks) return Promise.resolve([]);
    const incarnation = locks.incarnation ?? null;
    return Promise.resolve(
      locks
        .held()
        .map(
          (h): LockEntry => ({
            name: h.name,
            holderHost: incarnation === null ? null : hostOfIncarnation(incarnation),
            holderIncarnation: incarnation,
            sinceMs: h.acquiredAt,
            fencingRevision: h.createRevision,
            lease: null,
            waiters: h.waiters,
          }),
        )
        .sort(byName),
    );
  }
}
