/**
 * The fence port: one way to make sure a dead incarnation's process can act no more — power it
 * off, confirm its pod is gone, or wait out a lock-delay — before anyone takes over its work or
 * its locks. The fence runner calls one method per dead incarnation until it reports `fenced`.
 */
import type { ProcessIdentity } from '../identity.js';

/** The incarnation to fence, as its records describe it. */
export interface FenceTarget {
  /** `<host>:<lease hex>`. */
  readonly incarnation: string;
  /** `<host>@<backend>`. */
  readonly host: string;
  /** `<cluster>@<backend>`. */
  readonly cluster: string;
  /** The process that ran it; undefined when no record of it is left (a fence then cannot target a process). */
  readonly process: ProcessIdentity | undefined;
  /** Epoch ms: when its death was first seen (its alive entry vanished). */
  readonly diedAtMs: number;
}

/** How one attempt ended; a failure is a value, so the runner can retry and report it. */
export type FenceOutcome =
  | { readonly fenced: true; readonly detail: string }
  | {
      readonly fenced: false;
      readonly reason: string;
      readonly retryAfterMs?: number;
      /** Nothing failed: the fence is on its way and will land by itself (a lock-delay not over yet). Not counted as a failure. */
      readonly pending?: true;
    };

/** One fencing method. */
export interface FenceMethod {
  /** Recorded as how the incarnation was fenced. */
  readonly name: 'exec' | 'kubernetes' | 'lock-delay' | 'process-gone';
  /**
   * One attempt to fence `target`. Resolves `fenced: true` only once it is certain the process
   * can no longer act; anything less is `fenced: false` with the reason (and, for a lock-delay
   * not yet over, how long to wait).
   *
   * Failure semantics: never throws for an outcome; aborting `signal` stops the attempt (a
   * child process is killed) and resolves `fenced: false`.
   */
  fence(target: FenceTarget, signal: AbortSignal): Promise<FenceOutcome>;
}
