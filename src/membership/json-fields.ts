/**
 * Reading membership's JSON records field by field: each reader names the record and the field
 * that is wrong, so a malformed value in etcd is reported, not half-read.
 */
import { InvalidInputError } from '../errors.js';

/** A decoded JSON object. */
export type Json = Record<string, unknown>;

export function parseObject(text: string, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`${what} is not valid JSON`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError(`${what} is not an object`);
  return value as Json;
}

export function str(o: Json, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new InvalidInputError(`${what}: ${key} must be a string`);
  return v;
}

export function strOrNull(o: Json, key: string, what: string): string | null {
  const v = o[key];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw new InvalidInputError(`${what}: ${key} must be a string or null`);
  return v;
}

export function bool(o: Json, key: string, what: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw new InvalidInputError(`${what}: ${key} must be a boolean`);
  return v;
}

export function num(o: Json, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidInputError(`${what}: ${key} must be a number`);
  return v;
}

export function numOrNull(o: Json, key: string, what: string): number | null {
  const v = o[key];
  if (v === null || v === undefined) return null;
  return num(o, key, what);
}
