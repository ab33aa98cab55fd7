import type { KeyState } from './etcd-txn.js';

/**
 * The last state the etcd store saw of each key (value and revisions, or absent), bounded LRU.
 * A write's first attempt compares against it instead of reading first; when it is stale the
 * compare fails and the transaction's else branch returns the fresh state, so staleness costs
 * a retry, never correctness. A write the cached state would refuse is decided again on a fresh
 * read before it is refused (another process may have changed the key since). Parsed record bodies are memoised per state.
 */
export class SeenCache {
  private readonly states = new Map<string, KeyState | null>();
  private readonly decoded = new WeakMap<KeyState, object>();
  /** Characters of keys and values held (a record's decoded form, memoised beside it, is of the same order). */
  private heldChars = 0;

  /**
   * `decodeBody` turns a stored value into its record (the record codec: versions checked).
   * The cache holds at most `maxKeys` keys and `maxChars` characters of keys and values, so its
   * memory stays bounded whatever the size of the records.
   */
  constructor(
    private readonly maxKeys: number = DEFAULT_MAX_KEYS,
    private readonly decodeBody: (json: string, key: string) => object = (json) => JSON.parse(json) as object,
    private readonly maxChars: number = DEFAULT_MAX_CHARS,
  ) {}

  /** The key's last seen state; `undefined` when unknown, `null` when seen absent. */
  get(key: string): KeyState | null | undefined {
    return this.states.get(key);
  }

  /** Remembers a key's state; `body` is its decoded record, when the caller has it already. */
  remember(key: string, state: KeyState | null, body?: object): void {
    if (state !== null && body !== undefined) this.decoded.set(state, Object.freeze({ ...body, revision: state.mod }));
    this.forget(key);
    this.states.set(key, state);
    this.heldChars += charsOf(key, state);
    while (this.states.size > this.maxKeys || (this.heldChars > this.maxChars && this.states.size > 1)) {
      const oldest = this.states.keys().next();
      if (oldest.done) break;
      this.forget(oldest.value);
    }
  }

  forget(key: string): void {
    const had = this.states.get(key);
    if (had === undefined) return;
    this.heldChars -= charsOf(key, had);
    this.states.delete(key);
  }

  clear(): void {
    this.states.clear();
    this.heldChars = 0;
  }

  /** Keys held now. */
  get size(): number {
    return this.states.size;
  }

  /** Characters of keys and values held now. */
  get chars(): number {
    return this.heldChars;
  }

  /**
   * The stored record of a state with `revision` = its mod revision; null when absent. Decoded
   * once per state and shared: records are read-only, and the planner copies before it changes.
   * `key` names the record when it cannot be decoded (the codec throws).
   */
  decode<R>(state: KeyState | null, key: string): R | null {
    if (state === null) return null;
    let record = this.decoded.get(state);
    if (!record) {
      record = Object.freeze({ ...this.decodeBody(state.json, key), revision: state.mod });
      this.decoded.set(state, record);
    }
    return record as R;
  }
}

/**
 * Default bounds of {@link SeenCache}: 2,000 keys and 2 Mi characters of keys and values (a few
 * MB of heap with the decoded records). What the cache saves is the read before a write to a key
 * this process wrote or read a moment ago: the next step of an operation in flight (its claim,
 * transitions and end touch its op, its resource and perhaps a parent — three keys), or an API
 * request on a volume the API just wrote. A worker holds at most `amqp.prefetch` jobs (8 by
 * default), so 2,000 keys hold the working set of hundreds of operations in flight. Keys beyond
 * it are mostly stale by the time they are written again (a worker has moved the volume on since
 * the API wrote it), when the cached state costs a retry as a read would. A larger cache kept
 * 10,000 keys after a burst of creates — 10 to 15 MB of an otherwise idle process.
 */
export const DEFAULT_MAX_KEYS = 2_000;

/** See {@link DEFAULT_MAX_KEYS}. */
export const DEFAULT_MAX_CHARS = 2 * 2 ** 20;

function charsOf(key: string, state: KeyState | null): number {
  return key.length + (state === null ? 0 : state.json.length + state.mod.length + state.create.length + state.version.length);
}
