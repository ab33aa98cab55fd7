/**
 * The durable facts of one incarnation, which outlive it: which process ran it (written when it
 * joined) and how it ended for good — it left cleanly, or it was fenced (its process can act no
 * more). Orphan takeovers and lock hand-offs of a dead incarnation wait for its end record; a
 * clean leave writes one in the same transaction that removes the alive entry.
 */
import { InvalidInputError } from '../errors.js';
import type { ProcessIdentity } from '../identity.js';
import { type Json, num, parseObject, str } from './json-fields.js';

/**
 * How an incarnation ended for good: `left` — its own leave, while alive, after its runs
 * settled; `self` — a later incarnation of the same process saw its runs settle; `exec`,
 * `kubernetes`, `lock-delay`, `process-gone` — a fence by another member; `manual` — an
 * operator's confirmation.
 */
export type EndHow = 'left' | 'self' | 'exec' | 'kubernetes' | 'lock-delay' | 'process-gone' | 'manual';

export const END_HOWS: readonly EndHow[] = ['left', 'self', 'exec', 'kubernetes', 'lock-delay', 'process-gone', 'manual'];

/** `incarnations/<incarnation>`: who ran an incarnation, written when it joined. */
export interface IncarnationRecord {
  readonly incarnation: string;
  readonly host: string;
  readonly cluster: string;
  /** Null when the joining process did not say (an old member, or a test). */
  readonly process: ProcessIdentity | null;
  readonly joinedAtMs: number;
}

/** `fenced/<incarnation>`: how an incarnation ended for good; written once. */
export interface IncarnationEnd {
  readonly incarnation: string;
  readonly host: string;
  readonly how: EndHow;
  /** The incarnation that recorded it (itself, for `left`), or `operator`. */
  readonly by: string;
  readonly atMs: number;
  /** What the fence did, in a line (a command's exit, the pod's state, …). */
  readonly detail: string;
}

/** An incarnation record with its end, if it has one, and whether it is alive now. */
export interface IncarnationView {
  readonly record: IncarnationRecord | undefined;
  readonly end: IncarnationEnd | undefined;
  /** Its host's alive entry is this incarnation's (read with the records, at one revision on etcd). */
  readonly alive: boolean;
}

function decodeProcess(value: unknown, what: string): ProcessIdentity | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidInputError(`${what}: process must be an object`);
  const p = value as Json;
  const addresses = p.addresses;
  if (!Array.isArray(addresses) || !addresses.every((a) => typeof a === 'string')) throw new InvalidInputError(`${what}: process.addresses must be strings`);
  const pod = p.pod as Json | undefined | null;
  return {
    pid: num(p, 'pid', what),
    startTicks: str(p, 'startTicks', what),
    bootId: str(p, 'bootId', what),
    pidNamespace: str(p, 'pidNamespace', what),
    hostname: str(p, 'hostname', what),
    addresses: addresses,
    ...(p.startedAtMs === undefined ? {} : { startedAtMs: num(p, 'startedAtMs', what) }),
    ...(pod
      ? {
          pod: {
            name: str(pod, 'name', what),
            uid: str(pod, 'uid', what),
            namespace: str(pod, 'namespace', what),
            node: str(pod, 'node', what),
            ...(pod.container === undefined ? {} : { container: str(pod, 'container', what) }),
          },
        }
      : {}),
  };
}

/** Reads an incarnation record; throws {@link InvalidInputError} on a malformed value. */
export function decodeIncarnation(text: string): IncarnationRecord {
  const what = 'incarnation record';
  const o = parseObject(text, what);
  return {
    incarnation: str(o, 'incarnation', what),
    host: str(o, 'host', what),
    cluster: str(o, 'cluster', what),
    process: decodeProcess(o.process, what),
    joinedAtMs: num(o, 'joinedAtMs', what),
  };
}

/** Reads an end record; throws {@link InvalidInputError} on a malformed value. */
export function decodeEnd(text: string): IncarnationEnd {
  const what = 'incarnation end';
  const o = parseObject(text, what);
  const how = str(o, 'how', what);
  if (!(END_HOWS as readonly string[]).includes(how)) throw new InvalidInputError(`${what}: unknown how ${how}`);
  return {
    incarnation: str(o, 'incarnation', what),
    host: str(o, 'host', what),
    how: how as EndHow,
    by: str(o, 'by', what),
    atMs: num(o, 'atMs', what),
    detail: str(o, 'detail', what),
  };
}

/** The stored form (one JSON object). */
export function encodeIncarnationRecord(record: IncarnationRecord | IncarnationEnd): string {
  return JSON.stringify(record);
}
