import { CoordinatorError } from '../errors.js';

/** A volume API microversion, e.g. 3.26. */
export interface Microversion {
  readonly major: number;
  readonly minor: number;
}

/** The lowest and highest microversions hearth's API serves (Cinder 2023.1's range). */
export const MIN_VERSION: Microversion = { major: 3, minor: 0 };
export const MAX_VERSION: Microversion = { major: 3, minor: 70 };

/**
 * The message version the workers must read before the API serves a microversion: a later
 * microversion that needs a new operation (a new job kind, so a new message version) is
 * advertised and accepted only once every live worker of the cluster reads that version (the
 * skew policy, docs/upgrades.md). Ascending; every microversion up to `upTo` needs `messages`.
 */
export const MICROVERSION_MESSAGES: readonly { readonly upTo: Microversion; readonly messages: number }[] = [{ upTo: MAX_VERSION, messages: 1 }];

/**
 * The highest microversion to serve when the workers read message versions up to `messages`
 * (never below {@link MIN_VERSION}).
 */
export function servedMaxVersion(messages: number, table = MICROVERSION_MESSAGES): Microversion {
  let max = MIN_VERSION;
  for (const row of table) if (row.messages <= messages && compareVersions(row.upTo, max) > 0) max = row.upTo;
  return max;
}

/** The header clients send and servers echo. */
export const VERSION_HEADER = 'openstack-api-version';

/**
 * Cinder's form of a version (cinder/api/openstack/api_version_request.py): `Major.Minor`, no
 * leading zeros, e.g. `3.26` or `3.0`.
 */
const VERSION_FORM = /^([1-9]\d*)\.([1-9]\d*|0)$/;

/**
 * Digits a version part may have to be read as a number; a longer one (still a well-formed
 * version) is beyond any version served, so it is reported as out of range, never rounded.
 */
const MAX_VERSION_DIGITS = 6;

/** `3.26` → {3, 26}; undefined when the text is not a version in Cinder's form or has a part too long to be served. */
export function parseVersion(text: string): Microversion | undefined {
  const m = VERSION_FORM.exec(text.trim());
  if (!m || (m[1] as string).length > MAX_VERSION_DIGITS || (m[2] as string).length > MAX_VERSION_DIGITS) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export function formatVersion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/** Negative, zero or positive as `a` is below, equal to or above `b`. */
export function compareVersions(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

/** True when `v` is at least `min` (given as `3.7`). */
export function atLeast(v: Microversion, min: string): boolean {
  const m = parseVersion(min);
  if (!m) throw new Error(`bad microversion literal ${min}`);
  return compareVersions(v, m) >= 0;
}

/** The requested version is outside what the server serves (HTTP 406, Cinder's InvalidGlobalAPIVersion). */
export class VersionNotAcceptableError extends CoordinatorError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** The version header is not of Cinder's form (HTTP 400, Cinder's InvalidAPIVersionString). */
export class MalformedVersionError extends CoordinatorError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** A version as the client wrote it, for a message: JSON-quoted and cut, so it can never be long or hide text. */
function shownVersion(text: string): string {
  return JSON.stringify(text.length > 24 ? `${text.slice(0, 23)}…` : text).replace(/[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f]/g, '?');
}

/**
 * Reads `OpenStack-API-Version: volume X.Y` (or `volume latest`). No header means 3.0, as in
 * Cinder. Headers for other services are ignored.
 *
 * As Cinder answers: a version not of the form `Major.Minor` (`3`, `3.07`, `v3.1`, `volume`
 * with no version) is 400; a well-formed one outside 3.0–3.70 is 406, and is named exactly as
 * sent (never rounded: `3.000000000000000000000000000001` is not 3.0).
 *
 * @throws MalformedVersionError for a malformed version.
 * @throws VersionNotAcceptableError for one outside the served range.
 */
export function negotiate(header: string | string[] | undefined, max: Microversion = MAX_VERSION): Microversion {
  const values = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  for (const value of values) {
    const [service, version = ''] = value.trim().split(/\s+/, 2);
    if (service?.toLowerCase() !== 'volume') continue;
    if (version.toLowerCase() === 'latest') return max;
    if (!VERSION_FORM.test(version)) {
      throw new MalformedVersionError(`API Version String ${shownVersion(version)} is of invalid format. Must be of format MajorNum.MinorNum.`);
    }
    const v = parseVersion(version);
    if (!v || compareVersions(v, MIN_VERSION) < 0 || compareVersions(v, max) > 0) {
      throw new VersionNotAcceptableError(
        `Version ${v ? formatVersion(v) : shownVersion(version)} is not supported by the API. Minimum is ${formatVersion(MIN_VERSION)} and maximum is ${formatVersion(max)}.`,
      );
    }
    return v;
  }
  return MIN_VERSION;
}
