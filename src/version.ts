import { readFileSync } from 'node:fs';
import { buildRevisionFromEnvironment } from './config/environment.js';

/** What was built: the package version and the source revision. */
export interface BuildInfo {
  readonly version: string;
  readonly revision: string;
}

function readJson(url: URL): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Reads the version from package.json and the revision recorded at build time. */
export function loadBuildInfo(): BuildInfo {
  const pkg = readJson(new URL('../package.json', import.meta.url));
  const recorded = readJson(new URL('./build-info.json', import.meta.url));
  const revision = buildRevisionFromEnvironment() ?? (recorded?.revision as string | undefined) ?? 'unknown';
  return { version: (pkg?.version as string | undefined) ?? '0.0.0', revision };
}
