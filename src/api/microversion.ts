import { CoordinatorError } from '../errors.js';

/** A volume API microversion, e.g. 3.26. */
export interface Microversion {
  readonly major: number;
  readonly minor: number;
}

/** The lowest and highest microversions hearth's API serves (Cinder 2023.1's range). */
export const MIN_VERSION: Microversion = { major: 3, minor: 0 };
export const MAX_VERSION: Microversion = { major: 3, minor: 70 };

/** The header clients send and servers echo. */
export const VERSION_HEADER = 'openstack-api-version';

/** `3.26` → {3, 26}; undefined when the text is not a version. */
export function parseVersion(text: string): Microversion | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
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

/** The requested version is outside what the server serves (HTTP 406). */
export class VersionNotAcceptableError extends CoordinatorError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/**
 * Reads `OpenStack-API-Version: volume X.Y` (or `volume latest`). No header means 3.0, as in
 * Cinder. Headers for other services are ignored.
 *
 * @throws VersionNotAcceptableError for a malformed or out-of-range version.
 */
export function negotiate(header: string | string[] | undefined): Microversion {
  const values = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  for (const value of values) {
    const [service, version] = value.trim().split(/\s+/, 2);
    if (service?.toLowerCase() !== 'volume' || version === undefined) continue;
    if (version.toLowerCase() === 'latest') return MAX_VERSION;
    const v = parseVersion(version);
    if (!v) throw new VersionNotAcceptableError(`Invalid API version format ${JSON.stringify(version)}.`);
    if (compareVersions(v, MIN_VERSION) < 0 || compareVersions(v, MAX_VERSION) > 0) {
      throw new VersionNotAcceptableError(
        `Version ${formatVersion(v)} is not supported by the API. Minimum is ${formatVersion(MIN_VERSION)} and maximum is ${formatVersion(MAX_VERSION)}.`,
      );
    }
    return v;
  }
  return MIN_VERSION;
}
