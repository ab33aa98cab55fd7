import type { KeyState } from './etcd-txn.js';

/**
 * The last state the etcd store saw of each key (value and revisions, or absent), bounded LRU.
 * A write's first attempt compares against it instead of reading first; when it is stale the
 * compare fails and the transaction's else branch returns the fresh state, so staleness costs
 * a retry, never correctness. Parsed record bodies are memoised per state.
 */
export class SeenCache {
  private readonly states = new Map<string, KeyState | null>();
  private readonly parsed = new WeakMap<KeyState, object>();

  constructor(private readonly maxKeys: number) {}

  /** The key's last seen state; `undefined` when unknown, `null` when seen absent. */
  get(key: string): KeyState | null | undefined {
    return this.states.get(key);
  }

  remember(key: string, state: KeyState | null): void {
    this.states.delete(key);
    this.states.set(key, state);
    if (this.states.size > this.maxKeys) {
      const oldest = this.states.keys().next();
      if (!oldest.done) this.states.delete(oldest.value);
    }
  }

  forget(key: string): void {
    this.states.delete(key);
  }

  clear(): void {
    this.states.clear();
  }

  /** The stored record of a state with `revision` = its mod revision; null when absent. */
  decode<R>(state: KeyState | null): R | null {
    if (state === null) return null;
    let body = this.parsed.get(state);
    if (!body) {
      body = JSON.parse(state.json) as object;
      this.parsed.set(state, body);
    }
    return { ...body, revision: state.mod } as R;
  }
}
