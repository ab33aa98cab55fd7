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
  private readonly hinted: number | undefined;
  /** Entries counted in this page's ranges, and what its first range wanted. */
  private counted = 0;
  private firstWanted: number | undefined;
  private fromScopeStart = false;
  /** The width that would have held the last full window's entries twice over. */
  private fitted: number | undefined;

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
    this.hinted = hint?.width;
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
   * was wanted; `read`: the first and last entries it returned; `fromScopeStart`: whether it
   * began at the scope's start (its first entry is then the scope's first).
   */
  observed(count: number, wanted: number, read: { readonly first: Buffer | undefined; readonly last: Buffer | undefined }, fromScopeStart: boolean): void {
    const first = read.first === undefined ? undefined : this.timeOf(read.first);
    const last = read.last === undefined ? undefined : this.timeOf(read.last);
    if (this.firstWanted === undefined) {
      this.firstWanted = wanted;
      this.fromScopeStart = fromScopeStart;
    }
    // The first entry a page from the scope's start reads is the scope's first (empty windows may come before it).
    if (this.fromScopeStart && this.counted === 0 && first !== undefined) this.first = first;
    this.counted += count;
    // A full window tells the density exactly: its entries spanned first..last.
    if (count >= wanted && first !== undefined && last !== undefined) this.fitted = Math.max(1, 2 * (last - first + 1));
    if (count >= wanted) return;
    const factor = count === 0 ? MAX_GROWTH : Math.min(MAX_GROWTH, Math.max(2, Math.ceil((2 * wanted) / count)));
    this.width = Math.min(TIME_MAX, this.width * factor);
  }

  /**
   * Keeps the width for the scope's next page: the one a full window's entries fitted; for a
   * small scope read whole from its start (`exhausted`: the page reached its end), the whole
   * scope; else the width the page began with (widening through the scope's empty end says
   * nothing of its density).
   */
  remember(exhausted: boolean): void {
    const small = exhausted && this.fromScopeStart && this.counted < 4 * (this.firstWanted ?? 1);
    const next = this.fitted ?? (small ? TIME_MAX : (this.hinted ?? this.width));
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
