/**
 * Windows of creation time for reading a created_at listing index on etcd. etcd walks every key
 * of a range in its in-memory index even when the range has a `limit` (3.4 collects them all,
 * 3.5 counts them all), so a page read as [marker, end of scope) would cost the whole scope. The
 * created_at orders' keys begin with 15 time digits (inverted for newest first, list-plan.ts), so
 * a page reads [start, start + width) instead, widens the window while it holds too few entries,
 * and remembers per scope the width that served, so that the next page starts with it, and
 * where the scope's first entry was, so that a read from the scope's start ends its first
 * window just past it: each range costs about the entries of its window, a page or two,
 * whatever the scope holds.
 */
import { TIME_DIGITS, TIME_MAX, timeDigits } from './list-plan.js';

/** The first width (ms of creation time) for a scope with no hint yet. */
const FIRST_WIDTH_MS = 1_000;
/** How many scopes' widths are remembered (the oldest is dropped beyond). */
const MAX_HINTS = 1_000;
/** A window is widened at most this much per range (and at least twice), so a sparse stretch costs a few empty ranges. */
const MAX_GROWTH = 16;

/** The windows of one page read. */
/** What a scope's earlier pages learnt: the width that served, and the key time of its first entry. */
export interface WindowHint {
  readonly width: number;
  readonly first?: number;
}

export class TimeWindows {
  private width: number;
  private first: number | undefined;
  private lastCount = 0;
  private lastWanted = 1;

  /**
   * @param base the scope's key prefix (the time digits follow it)
   * @param hints widths that served earlier pages, by scope (shared by the reads of one store)
   * @param nowMs where a newest-first read from the scope's start begins: everything created
   *   since `nowMs - width`, or later (a clock ahead), is in the first window
   */
  constructor(
    private readonly base: string,
    private readonly dir: 'asc' | 'desc',
    private readonly hints: Map<string, WindowHint>,
    private readonly nowMs: number,
  ) {
    const hint = hints.get(base);
    this.width = hint?.width ?? FIRST_WIDTH_MS;
    this.first = hint?.first;
  }

  /** The end (exclusive) of the window starting at `start`, never past `end`. */
  endFor(start: Buffer, end: Buffer): Buffer {
    const from = this.timeOf(start);
    // From the scope's start the window covers everything up to just past its first entry as
    // last seen (or, newest first, since now): entries before it — newer ones — are in it too.
    const startAt = this.first ?? (this.dir === 'desc' ? TIME_MAX - this.nowMs : 0);
    const to = from === undefined ? startAt + this.width : from + this.width;
    if (to >= TIME_MAX) return end;
    const key = Buffer.from(`${this.base}${timeDigits(to)}`);
    return Buffer.compare(key, end) < 0 ? key : end;
  }

  /**
   * What a range over the last window held (`count`: its keys, whatever the limit) against what
   * was wanted; `firstKey`: the first entry it returned, when the range began at the scope's start.
   */
  observed(count: number, wanted: number, firstKey?: Buffer): void {
    if (firstKey !== undefined) this.first = this.timeOf(firstKey) ?? this.first;
    this.lastCount = count;
    this.lastWanted = wanted;
    if (count >= wanted) return;
    const factor = count === 0 ? MAX_GROWTH : Math.min(MAX_GROWTH, Math.max(2, Math.ceil((2 * wanted) / count)));
    this.width = Math.min(TIME_MAX, this.width * factor);
  }

  /** Keeps the width for the scope's next page: narrowed to about two pages when the last window held many more. */
  remember(): void {
    let next = this.width;
    if (this.lastCount > 4 * this.lastWanted) next = Math.max(1, Math.floor((this.width * 2 * this.lastWanted) / this.lastCount));
    this.hints.delete(this.base);
    this.hints.set(this.base, this.first === undefined ? { width: next } : { width: next, first: this.first });
    if (this.hints.size > MAX_HINTS) {
      const oldest = this.hints.keys().next();
      if (!oldest.done) this.hints.delete(oldest.value);
    }
  }

  /** The time digits right after the scope in `key`; undefined at the scope's start. */
  private timeOf(key: Buffer): number | undefined {
    const digits = key.subarray(Buffer.byteLength(this.base), Buffer.byteLength(this.base) + TIME_DIGITS).toString();
    return /^[0-9]{15}$/.test(digits) ? Number(digits) : undefined;
  }
}
