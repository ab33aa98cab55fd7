import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDriver } from '../../../src/composition/driver.js';
import { loadConfig } from '../../../src/config/load.js';
import { parseReplicationTargets, replicationTargetListIssues } from '../../../src/drivers/replication-targets.js';
import { ConfigError, InvalidInputError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';

async function issuesOf(env: Record<string, string>): Promise<string[]> {
  const err = await loadConfig({ env, secretFiles: 'skip' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
}

describe('replication targets in the configuration', () => {
  it('reads <backend_id>:<directory> lists from the environment and a file, and defaults to none', async () => {
    expect((await loadConfig({ env: {}, secretFiles: 'skip' })).driver.replicationTargets).toEqual([]);
    const config = await loadConfig({ env: { HEARTH_DRIVER_REPLICATION_TARGETS: 'dr-site:/mnt/dr/volumes, lab:/srv/lab' }, secretFiles: 'skip' });
    expect(config.driver.replicationTargets).toEqual(['dr-site:/mnt/dr/volumes', 'lab:/srv/lab']);
    expect(parseReplicationTargets(config.driver.replicationTargets)).toEqual([
      { backendId: 'dr-site', location: '/mnt/dr/volumes' },
      { backendId: 'lab', location: '/srv/lab' },
    ]);
  });

  it('refuses items without an id, the id default, bad ids, empty places, and ids or places named twice — naming the option', async () => {
    const cases: [string, RegExp][] = [
      ['/mnt/dr', /is not <backend_id>:<directory>/],
      ['default:/mnt/dr', /names the primary/],
      ['-x:/mnt/dr', /must be 1-64 letters/],
      ['dr:', /names no directory/],
      ['dr:/a,dr:/b', /named more than once/],
      ['a:/mnt/x,b:/mnt/x', /place of more than one target/],
    ];
    for (const [text, message] of cases) {
      for (const [name, path] of [
        ['HEARTH_DRIVER_REPLICATION_TARGETS', 'driver.replicationTargets'],
        ['HEARTH_DRIVER_FAKE_REPLICATION_TARGETS', 'driver.fakeReplicationTargets'],
      ] as const) {
        const issues = await issuesOf({ [name]: text });
        expect(issues).toHaveLength(1);
        expect(issues[0]).toContain(`${path}: `);
        expect(issues[0]).toMatch(message);
      }
      // The driver's own check says the same when it is given a list directly.
      const items = text.split(',');
      expect(replicationTargetListIssues(items).join('; ')).toMatch(message);
      expect(() => parseReplicationTargets(items)).toThrow(InvalidInputError);
    }
  });

  it('opens replicating file and fake drivers from the configuration; the fake needs its journal', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hearth-repl-config-'));
    try {
      const file = await loadConfig({
        env: { HEARTH_DATA_DIR: root, HEARTH_DRIVER_REPLICATION_TARGETS: `dr1:${join(root, 'dr1')}` },
        secretFiles: 'skip',
      });
      const fileDriver = await openDriver(file, { logger: silentLogger() });
      expect(fileDriver.replication?.targetIds).toEqual(['dr1']);
      await fileDriver.close();
      const noTargets = await openDriver(await loadConfig({ env: { HEARTH_DATA_DIR: root }, secretFiles: 'skip' }), { logger: silentLogger() });
      expect(noTargets.replication).toBeUndefined();
      await noTargets.close();
      const fakeEnv = { HEARTH_DRIVER_NAME: 'fake', HEARTH_DRIVER_FAKE_REPLICATION_TARGETS: 'dr1:site-b' };
      await expect(openDriver(await loadConfig({ env: fakeEnv, secretFiles: 'skip' }), { logger: silentLogger() })).rejects.toBeInstanceOf(InvalidInputError);
      const fake = await openDriver(await loadConfig({ env: { ...fakeEnv, HEARTH_DRIVER_FAKE_JOURNAL: join(root, 'journal.jsonl') }, secretFiles: 'skip' }), { logger: silentLogger() });
      expect(fake.replication?.state()).toEqual({ status: 'enabled', activeBackendId: 'default', epoch: 0 });
      await fake.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
