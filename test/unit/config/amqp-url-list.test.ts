// amqp.url as a list of RabbitMQ nodes: how it is read, what is refused (exit 2, naming the
// option), and that every URL's password stays out of what hearth prints.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { loadConfig } from '../../../src/config/load.js';
import { redactConfig, redactUrl } from '../../../src/config/redact.js';
import { nodeOf, splitUrlList, vhostOf } from '../../../src/config/url-lists.js';
import { ConfigError, type ConfigIssue } from '../../../src/errors.js';

const ETCD = { HEARTH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };

async function issues(env: Record<string, string>): Promise<ConfigIssue[]> {
  const err = await loadConfig({ env: { ...ETCD, ...env } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return [];
  expect(err).toBeInstanceOf(ConfigError);
  return [...(err as ConfigError).issues];
}

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; text: string }> {
  let text = '';
  const code = await runCli(args, { out: (t) => void (text += t), err: (t) => void (text += t) }, env);
  return { code, text };
}

describe('splitUrlList', () => {
  it('splits at a comma that starts another URL, never inside a password', () => {
    expect(splitUrlList('')).toEqual([]);
    expect(splitUrlList('amqp://u:p@a:5672/v')).toEqual(['amqp://u:p@a:5672/v']);
    expect(splitUrlList('amqp://a/v, amqp://b/v,amqp://c/v,')).toEqual(['amqp://a/v', 'amqp://b/v', 'amqp://c/v']);
    expect(splitUrlList('amqp://u:p,w@a/v,amqp://u:p,w@b/v')).toEqual(['amqp://u:p,w@a/v', 'amqp://u:p,w@b/v']);
  });

  it('labels a node host:port with the scheme\'s default port, and reads the vhost', () => {
    expect(nodeOf('amqp://u:secret@rabbit-0/vh')).toBe('rabbit-0:5672');
    expect(nodeOf('amqps://u@rabbit-1:5999/vh')).toBe('rabbit-1:5999');
    expect(nodeOf('amqps://[::1]/vh')).toBe('[::1]:5671');
    expect(vhostOf('amqp://a/%2Fhearth')).toBe('/hearth');
    expect(vhostOf('amqp://a')).toBe('/');
  });
});

describe('amqp.url with several nodes', () => {
  it('is accepted when every URL has one scheme, one vhost and its own host', async () => {
    const config = await loadConfig({ env: { ...ETCD, HEARTH_AMQP_URL: 'amqps://h:p@r0:5671/vh,amqps://h:p@r1:5671/vh,amqps://h:p@r2:5671/vh' } });
    expect(splitUrlList(config.amqp.url)).toHaveLength(3);
    expect(config.amqp.quorumInitialGroupSize).toBe(3);
    expect(config.amqp.managementUrl).toBe('');
  });

  it('may be a list in a configuration file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-amqp-list-'));
    const file = join(dir, 'hearth.yaml');
    await writeFile(file, 'amqp:\n  url:\n    - amqp://h:p@r0/vh\n    - amqp://h:p@r1/vh\n  managementUrl: [http://r0:15672, http://r1:15672]\n');
    const config = await loadConfig({ file, env: ETCD });
    expect(config.amqp.url).toBe('amqp://h:p@r0/vh,amqp://h:p@r1/vh');
    expect(splitUrlList(config.amqp.managementUrl)).toEqual(['http://r0:15672', 'http://r1:15672']);
  });

  it('refuses a mix of amqp:// and amqps://, naming amqp.url', async () => {
    const found = await issues({ HEARTH_AMQP_URL: 'amqp://h:p@r0/vh,amqps://h:p@r1/vh' });
    expect(found).toEqual([{ path: 'amqp.url', env: 'HEARTH_AMQP_URL', message: expect.stringContaining('mixes amqp:// and amqps://') as string }]);
  });

  it('refuses different vhosts, a node listed twice, several hosts in one URL, and no URL at all', async () => {
    expect((await issues({ HEARTH_AMQP_URL: 'amqp://h:p@r0/a,amqp://h:p@r1/b' }))[0]?.message).toMatch(/different vhosts \(a, b\)/);
    expect((await issues({ HEARTH_AMQP_URL: 'amqp://h:p@r0/a,amqp://h:p@r0:5672/a' }))[0]?.message).toMatch(/lists r0:5672 more than once/);
    expect((await issues({ HEARTH_AMQP_URL: 'amqp://h:p@r0,r1,r2/a' }))[0]?.message).toMatch(/one URL per node/);
    expect((await issues({ HEARTH_AMQP_URL: 'amqp://r0/a,http://r1/a' }))[0]?.message).toMatch(/must be amqp:\/\/ or amqps:\/\//);
    expect((await issues({ HEARTH_AMQP_URL: ',' }))[0]).toMatchObject({ path: 'amqp.url', message: 'names no URL' });
  });

  it('applies amqp.passwordFile to every URL: each must name the user and none a password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-amqp-list-'));
    const file = join(dir, 'pw');
    await writeFile(file, 'from-the-file\n');
    const ok = { HEARTH_AMQP_PASSWORD_FILE: file };
    await expect(loadConfig({ env: { ...ETCD, ...ok, HEARTH_AMQP_URL: 'amqp://h@r0/v,amqp://h@r1/v' } })).resolves.toBeDefined();
    const found = await issues({ ...ok, HEARTH_AMQP_URL: 'amqp://h@r0/v,amqp://r1/v,amqp://h:hunter2@r2/v' });
    expect(found.map((i) => i.message)).toEqual([
      expect.stringContaining('in every URL; r1:5672 has none') as string,
      expect.stringContaining('amqp.url (r2:5672) holds a password too') as string,
    ]);
    expect(JSON.stringify(found)).not.toContain('hunter2');
  });

  it('is a configuration error of `hearth config check` and `hearth serve`: exit 2, no password printed', async () => {
    const env = { ...ETCD, HEARTH_AMQP_URL: 'amqp://h:pw-one@127.0.0.1:1/v,amqps://h:pw-two@127.0.0.1:2/v' };
    for (const args of [['config', 'check'], ['serve']]) {
      const res = await cli(args, env);
      expect(res.code, res.text).toBe(2);
      expect(res.text).toContain('amqp.url');
      expect(res.text).toContain('mixes amqp:// and amqps://');
      expect(res.text).not.toMatch(/pw-one|pw-two/);
    }
  });
});

describe('every URL\'s password is redacted', () => {
  it('in a list, URL by URL, keeping each host', () => {
    expect(redactUrl('amqp://u:one@r0:5672/v,amqp://u:two@r1:5672/v,amqp://u:three@r2:5672/v')).toBe(
      'amqp://u:[REDACTED]@r0:5672/v,amqp://u:[REDACTED]@r1:5672/v,amqp://u:[REDACTED]@r2:5672/v',
    );
    expect(redactUrl('amqps://hearth@r0/v,amqps://hearth@r1/v')).toBe('amqps://hearth@r0/v,amqps://hearth@r1/v');
    expect(redactUrl('connect failed: amqp://u:p,w@r0/v, amqp://u:q@r1/v')).toBe('connect failed: amqp://u:[REDACTED]@r0/v, amqp://u:[REDACTED]@r1/v');
  });

  it('errs towards hiding where a comma might be inside a password', () => {
    // "p,x://y" could be a password: the run is redacted whole.
    const text = redactUrl('amqp://u:p,x://y@r0/v');
    expect(text).not.toContain('p,x');
    expect(redactUrl('amqp://r0:5672/v,amqp://u:secret@r1/v')).not.toContain('secret');
  });

  it('in the printed configuration and in `hearth config check`', async () => {
    const env = {
      ...ETCD,
      HEARTH_AMQP_URL: 'amqp://u:first-pw@r0/v,amqp://u:second-pw@r1/v',
      HEARTH_AMQP_MANAGEMENT_URL: 'https://mon:mgmt-pw@r0:15671,https://mon:mgmt-pw@r1:15671',
    };
    const config = await loadConfig({ env });
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).toContain('amqp://u:[REDACTED]@r0/v,amqp://u:[REDACTED]@r1/v');
    expect(printed).toContain('https://mon:[REDACTED]@r1:15671');
    for (const format of [[], ['--json']]) {
      const res = await cli(['config', 'check', ...format], env);
      expect(res.code, res.text).toBe(0);
      expect(res.text).not.toMatch(/first-pw|second-pw|mgmt-pw/);
    }
  });
});

describe('amqp.managementUrl and amqp.quorumInitialGroupSize', () => {
  it('take http(s) URLs with a user and a password together or neither, and need amqp.url', async () => {
    const amqp = { HEARTH_AMQP_URL: 'amqp://u:p@r0/v' };
    await expect(loadConfig({ env: { ...ETCD, ...amqp, HEARTH_AMQP_MANAGEMENT_URL: 'http://r0:15672,http://r1:15672' } })).resolves.toBeDefined();
    expect((await issues({ ...amqp, HEARTH_AMQP_MANAGEMENT_URL: 'amqp://r0:15672' }))[0]).toMatchObject({ path: 'amqp.managementUrl' });
    expect((await issues({ ...amqp, HEARTH_AMQP_MANAGEMENT_URL: 'http://mon@r0:15672' }))[0]?.message).toMatch(/user and a password together/);
    const single = await loadConfig({ env: { HEARTH_AMQP_MANAGEMENT_URL: '' } });
    expect(single.amqp.managementUrl).toBe('');
    const err = await loadConfig({ env: { HEARTH_AMQP_MANAGEMENT_URL: 'http://r0:15672' } }).catch((e: unknown) => e);
    expect((err as ConfigError).issues[0]).toMatchObject({ path: 'amqp.managementUrl', message: expect.stringContaining('needs amqp.url') as string });
  });

  it('refuse a group size below 1', async () => {
    expect((await issues({ HEARTH_AMQP_URL: 'amqp://u:p@r0/v', HEARTH_AMQP_QUORUM_INITIAL_GROUP_SIZE: '0' }))[0]?.path).toBe('amqp.quorumInitialGroupSize');
  });
});
