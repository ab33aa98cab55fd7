import { effectiveAuthMode, isLoopbackHost } from '../config/api-auth.js';
import { parseListen } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { ApiAuthOptions } from './auth.js';
import { TokenFile } from './token-file.js';

/** The API's authentication, built from configuration; `load()` reads the token files. */
export interface ConfiguredAuth {
  readonly options: ApiAuthOptions;
  /**
   * Reads the token files (token mode) or warns about an exposed noauth API.
   *
   * @throws ConfigError when a token file holds no usable token.
   */
  load(): Promise<void>;
}

/**
 * Builds the API's authentication from `api.*` options that the config rules already checked
 * (token mode has a token file; noauth off loopback was explicitly allowed).
 */
export function apiAuthFromConfig(api: Config['api'], logger: Logger): ConfiguredAuth {
  if (effectiveAuthMode(api) === 'noauth') {
    return {
      options: { mode: 'noauth' },
      async load() {
        const { host } = parseListen(api.listen);
        if (!isLoopbackHost(host)) {
          logger.warn({ listen: api.listen }, 'API runs noauth on a non-loopback address: anyone who reaches it is admin');
        }
      },
    };
  }
  const admin = new TokenFile(api.tokenFile, { option: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE', logger });
  const reader =
    api.readerTokenFile === ''
      ? undefined
      : new TokenFile(api.readerTokenFile, { option: 'api.readerTokenFile', env: 'HEARTH_API_READER_TOKEN_FILE', logger });
  return {
    options: { mode: 'token', admin, reader },
    async load() {
      await admin.load();
      await reader?.load();
      logger.info({ readerToken: reader !== undefined }, 'API requires a token');
    },
  };
}
