import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { effectiveAuthMode, isLoopbackHost } from '../../../src/config/api-auth.js';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

async function issues(env: Record<string, string>): Promise<{ path: string; message: string }[]> {
  const result = await loadConfig({ env }).then(
    () => [],
    (err: unknown) => {
      expect(err).toBeInstanceOf(ConfigError);
      return [...(err as ConfigError).issues];
    },
  );
  return result;
}

describe('API auth options', () => {
  it('run noauth by default, on the loopback listen address', async () => {
    const config = await loadConfig({ env: {} });
    expect(config.api.auth).toBe('auto');
    expect(effectiveAuthMode(config.api)).toBe('noauth');
  });

  it('switch auto to token mode when a token file is named', async () => {
    const config = await loadConfig({ env: { HEARTH_API_TOKEN_FILE: '/run/secrets/token', HEARTH_API_LISTEN: '0.0.0.0:8776' }, secretFiles: 'skip' });
    expect(effectiveAuthMode(config.api)).toBe('token');
  });

  it('refuse noauth on a non-loopback address, naming the option and the way out', async () => {
    for (const listen of ['0.0.0.0:8776', '[::]:8776', '10.1.2.3:8776', 'api.example.com:8776']) {
      const found = await issues({ HEARTH_API_LISTEN: listen });
      expect(found, listen).toHaveLength(1);
      expect(found[0]?.path).toBe('api.auth');
      expect(found[0]?.message).toContain('api.tokenFile');
      expect(found[0]?.message).toContain('api.allowRemoteNoauth');
    }
    expect(await issues({ HEARTH_API_LISTEN: '0.0.0.0:8776', HEARTH_API_AUTH: 'noauth' })).toHaveLength(1);
  });

  it('allow noauth off loopback only when forced', async () => {
    expect(await issues({ HEARTH_API_LISTEN: '0.0.0.0:8776', HEARTH_API_ALLOW_REMOTE_NOAUTH: 'true' })).toEqual([]);
  });

  it('skip the API rules on a worker-only process', async () => {
    expect(await issues({ HEARTH_API_LISTEN: '0.0.0.0:8776', HEARTH_ROLES: 'worker' })).toEqual([]);
  });

  it('reject contradictory combinations', async () => {
    expect((await issues({ HEARTH_API_AUTH: 'token' }))[0]?.path).toBe('api.tokenFile');
    expect((await issues({ HEARTH_API_AUTH: 'noauth', HEARTH_API_TOKEN_FILE: '/t' }))[0]?.path).toBe('api.tokenFile');
    expect((await issues({ HEARTH_API_READER_TOKEN_FILE: '/r' }))[0]?.path).toBe('api.readerTokenFile');
    expect((await issues({ HEARTH_API_TOKEN_FILE: '/t', HEARTH_API_READER_TOKEN_FILE: '/t' }))[0]?.path).toBe('api.readerTokenFile');
  });

  it('make `hearth config check` exit 2 with a clear message', async () => {
    const err: string[] = [];
    const code = await runCli(['config', 'check', '--api-listen', '0.0.0.0:8776'], { out: () => undefined, err: (t) => err.push(t) }, {});
    expect(code).toBe(2);
    expect(err.join('')).toContain('api.auth (HEARTH_API_AUTH): noauth (every request is admin) is allowed only on a loopback api.listen');
  });
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.3.2.1', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });
  it.each(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::2', 'example.com', 'localhost.example.com', '127.example.com'])(
    '%s is not loopback',
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );
});
