import { isIP } from 'node:net';
import type { ConfigIssue } from '../errors.js';
import type { Config } from './schema.js';

/** How the API authenticates once `auto` is resolved. */
export type AuthMode = 'token' | 'noauth';

/** `auto` resolves to `token` when a token file is named, else to Cinder's `noauth`. */
export function effectiveAuthMode(api: Pick<Config['api'], 'auth' | 'tokenFile'>): AuthMode {
  if (api.auth === 'auto') return api.tokenFile === '' ? 'noauth' : 'token';
  return api.auth;
}

/**
 * True when `host` (as in `api.listen`, brackets removed) can only be reached from this
 * machine: `localhost`, 127.0.0.0/8, `::1` or an IPv4-mapped loopback address. Any other name
 * is treated as reachable from elsewhere, since what it resolves to can change.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * The API authentication rules that involve more than one option. `listenHost` is the host
 * part of `api.listen`. Noauth makes every caller an admin, so it is allowed only where no
 * one else can connect, unless `api.allowRemoteNoauth` says the risk is accepted.
 */
export function apiAuthIssues(api: Config['api'], listenHost: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const mode = effectiveAuthMode(api);
  if (api.auth === 'token' && api.tokenFile === '') {
    issues.push({ path: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE', message: 'api.auth is token, so api.tokenFile must name the token file' });
  }
  if (api.auth === 'noauth' && api.tokenFile !== '') {
    issues.push({ path: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE', message: 'api.auth is noauth, which ignores tokens; remove api.tokenFile or use api.auth=token' });
  }
  if (api.readerTokenFile !== '' && mode !== 'token') {
    issues.push({ path: 'api.readerTokenFile', env: 'HEARTH_API_READER_TOKEN_FILE', message: 'a read-only token needs token auth: set api.tokenFile too' });
  }
  if (api.readerTokenFile !== '' && api.readerTokenFile === api.tokenFile) {
    issues.push({ path: 'api.readerTokenFile', env: 'HEARTH_API_READER_TOKEN_FILE', message: 'must not be the same file as api.tokenFile' });
  }
  if (mode === 'noauth' && !isLoopbackHost(listenHost) && !api.allowRemoteNoauth) {
    issues.push({
      path: 'api.auth',
      env: 'HEARTH_API_AUTH',
      message:
        `noauth (every request is admin) is allowed only on a loopback api.listen, and ${api.listen} is not one; ` +
        'set api.tokenFile to require a token, or api.allowRemoteNoauth=true to accept the risk',
    });
  }
  return issues;
}
