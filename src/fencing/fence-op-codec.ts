/** The stored form of a fence operation (one JSON object; the revision is the store's, not stored). */
import { InvalidInputError } from '../errors.js';
import type { OwnerRef } from '../identity.js';
import { bool, type Json, num, parseObject, str } from '../membership/json-fields.js';
import type { FenceOp } from './fence-queue.js';

type Stored = Omit<FenceOp, 'revision'>;

export function encodeFenceOp(op: Stored | FenceOp): string {
  const { revision: _revision, ...stored } = op as FenceOp;
  return JSON.stringify(stored);
}

function owner(value: unknown, what: string): OwnerRef | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidInputError(`${what}: owner must be an object or null`);
  const o = value as Json;
  return { host: str(o, 'host', what), incarnation: str(o, 'incarnation', what), aliveRevision: str(o, 'aliveRevision', what) };
}

/** Reads a stored fence operation; throws {@link InvalidInputError} on a malformed value. */
export function decodeFenceOp(text: string): Stored {
  const what = 'fence operation';
  const o = parseObject(text, what);
  const lastError = o.lastError;
  if (lastError !== null && lastError !== undefined && typeof lastError !== 'string') throw new InvalidInputError(`${what}: lastError must be a string or null`);
  return {
    incarnation: str(o, 'incarnation', what),
    host: str(o, 'host', what),
    cluster: str(o, 'cluster', what),
    diedAtMs: num(o, 'diedAtMs', what),
    observedLive: bool(o, 'observedLive', what),
    requestedAtMs: num(o, 'requestedAtMs', what),
    owner: owner(o.owner, what),
    attempt: num(o, 'attempt', what),
    // Absent in operations written before the count existed.
    failures: o.failures === undefined ? 0 : num(o, 'failures', what),
    lastError: (lastError) ?? null,
    nextAttemptAtMs: num(o, 'nextAttemptAtMs', what),
  };
}
