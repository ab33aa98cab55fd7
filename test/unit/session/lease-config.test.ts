import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

describe('leaseTtlMs configuration', () => {
  it('must be whole seconds, because etcd lease TTLs are; the message suggests a value', async () => {
    const err = (await loadConfig({ env: { HEARTH_LEASE_TTL_MS: '2500' } }).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    const issue = err.issues.find((i) => i.path === 'leaseTtlMs');
    expect(issue?.env).toBe('HEARTH_LEASE_TTL_MS');
    expect(issue?.message).toContain('whole number of seconds');
    expect(issue?.message).toContain('3000');
    await expect(loadConfig({ env: { HEARTH_LEASE_TTL_MS: '3000', HEARTH_LEASE_MARGIN_MS: '1000' } })).resolves.toMatchObject({ leaseTtlMs: 3_000 });
  });
});
