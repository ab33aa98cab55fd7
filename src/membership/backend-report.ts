/**
 * A worker's report of its storage backend, carried in its alive entry: whether the backend
 * passed its last health check, and the pool's capacity as the driver saw it. It lives and dies
 * with the member (the alive entry rides on its lease), so nobody reads the report of a worker
 * that is gone, and the API — which may run in another process — reads it from the membership
 * snapshot: os-services' `backend_state`, and the pool of `scheduler-stats/get_pools`.
 */
import { InvalidInputError } from '../errors.js';
import { bool, type Json, num, str, strOrNull } from './json-fields.js';

/** The pool as the member's driver reported it, in bytes (see the driver port's `Capacity`). */
export interface PoolReport {
  readonly totalBytes: number;
  readonly freeBytes: number;
  readonly provisionedBytes: number;
  readonly allocatedBytes: number;
  readonly thin: boolean;
  readonly maxOverSubscriptionRatio: number;
  readonly reservedPercentage: number;
  /** The driver's name (`file`, `fake`). */
  readonly driver: string;
  /** Epoch ms when the capacity read began. */
  readonly atMs: number;
}

/** See the module doc. */
export interface BackendReport {
  readonly state: 'up' | 'down';
  /** Why it is down; null when up. */
  readonly reason: string | null;
  /** Epoch ms of the check. */
  readonly checkedAtMs: number;
  /** The last capacity read (null until one succeeded). */
  readonly pool: PoolReport | null;
}

/** Reads a backend report inside an alive entry; undefined when there is none. @throws InvalidInputError when malformed. */
export function decodeBackendReport(value: unknown): BackendReport | undefined {
  if (value === undefined || value === null) return undefined;
  const what = 'backend report';
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidInputError(`${what} is not an object`);
  const o = value as Json;
  const state = str(o, 'state', what);
  if (state !== 'up' && state !== 'down') throw new InvalidInputError(`${what}: state must be up or down`);
  return { state, reason: strOrNull(o, 'reason', what), checkedAtMs: num(o, 'checkedAtMs', what), pool: decodePool(o.pool) };
}

function decodePool(value: unknown): PoolReport | null {
  if (value === undefined || value === null) return null;
  const what = 'pool report';
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidInputError(`${what} is not an object`);
  const o = value as Json;
  return {
    totalBytes: num(o, 'totalBytes', what),
    freeBytes: num(o, 'freeBytes', what),
    provisionedBytes: num(o, 'provisionedBytes', what),
    allocatedBytes: num(o, 'allocatedBytes', what),
    thin: bool(o, 'thin', what),
    maxOverSubscriptionRatio: num(o, 'maxOverSubscriptionRatio', what),
    reservedPercentage: num(o, 'reservedPercentage', what),
    driver: str(o, 'driver', what),
    atMs: num(o, 'atMs', what),
  };
}
