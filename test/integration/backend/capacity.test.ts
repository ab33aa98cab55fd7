import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cinder, parseCinderDict, parseCinderTable } from '../../support/cinder-cli.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient } from '../../support/orphans-cluster.js';

const run = promisify(execFile);

/**
 * A pool too small for the request, with the real file driver on a single node: a small
 * size-limited directory (a 64 MiB tmpfs) where the machine allows mounting one, otherwise the
 * over-subscription settings on an ordinary directory (no over-subscription, a request larger
 * than the file system). Either way the create is accepted (202), ends in `error` with a user
 * message, and nothing is allocated; an extend that does not fit goes back to `available`.
 */
describe('capacity: a create or extend that cannot fit', () => {
  let root: string;
  let dir: string;
  let mounted = false;
  let hearth: HearthProcess;
  let tooBig: number;
  let fits: number;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'hearth-capacity-'));
    dir = join(root, 'pool');
    await mkdir(dir);
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]);
      mounted = true;
    } catch {
      mounted = false;
    }
    // tmpfs: 64 MiB × 20 (Cinder's default ratio) = 1.25 GiB of thin volumes. Otherwise: no over-subscription.
    const env: Record<string, string> = { HEARTH_DRIVER_FILE_DIR: dir, HEARTH_CLUSTER: 'cap', HEARTH_BACKEND: 'be', HEARTH_HOST: 'n1' };
    if (!mounted) env.HEARTH_DRIVER_MAX_OVER_SUBSCRIPTION_RATIO = '1';
    hearth = await startHearth({ name: 'capacity', env });
    if (mounted) {
      fits = 1;
      tooBig = 2;
    } else {
      const { stdout } = await run('stat', ['-f', '-c', '%S %b', dir]);
      const [bsize = 0, blocks = 0] = stdout.trim().split(/\s+/).map(Number);
      fits = 1;
      tooBig = Math.ceil((bsize * blocks) / 1024 ** 3) + 1;
    }
  });
  afterAll(async () => {
    await hearth?.stop();
    if (mounted) await run('umount', [dir]).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('get-pools --detail shows the one pool with Cinder\'s capacity fields', async () => {
    const pool = parseCinderDict(await cinder(hearth.apiUrl, 'get-pools', '--detail'));
    expect(pool).toMatchObject({ name: 'cap@be#be', pool_name: 'be', volume_backend_name: 'be', storage_protocol: 'nfs', backend_state: 'up', thin_provisioning_support: 'True', reserved_percentage: '0' });
    expect(Number(pool.total_capacity_gb)).toBeGreaterThan(0);
    expect(pool.max_over_subscription_ratio).toBe(mounted ? '20' : '1');
    expect(parseCinderTable(await cinder(hearth.apiUrl, 'get-pools'))).toEqual([{ Property: 'name', Value: 'cap@be#be' }]);
  });

  it('a create too big for the pool is accepted, ends in error with a user message, and allocates nothing', async () => {
    const created = parseCinderDict(await cinder(hearth.apiUrl, 'create', '--name', 'too-big', String(tooBig)));
    const client = new ClusterClient(hearth);
    await client.waitStatus('volume', created.id!, 'error');
    expect((await readdir(dir)).filter((f) => f.startsWith('volume-'))).toEqual([]);
    const messages = parseCinderTable(await cinder(hearth.apiUrl, 'message-list'));
    const mine = messages.find((m) => m['Resource UUID'] === created.id);
    expect(mine).toMatchObject({ 'Resource Type': 'VOLUME', 'Event ID': 'VOLUME_VOLUME_001_003' });
    expect(mine!['User Message']).toMatch(/^schedule allocate volume:Could not find any available weighted backend\. Insufficient free/);
    const shown = parseCinderDict(await cinder(hearth.apiUrl, 'message-show', mine!.ID!));
    expect(shown).toMatchObject({ id: mine!.ID, message_level: 'ERROR', resource_uuid: created.id });
    expect(shown.request_id).toMatch(/^req-/);
    await cinder(hearth.apiUrl, 'message-delete', mine!.ID!);
    await expect(cinder(hearth.apiUrl, 'message-show', mine!.ID!)).rejects.toThrow(/could not be found|No message with a name or ID/);
    await expect(cinder(hearth.apiUrl, 'message-show', 'not-a-uuid')).rejects.toThrow(/No message with a name or ID of 'not-a-uuid' exists|could not be found/);
  });

  it('an extend that does not fit goes back to available with its size, and the user is told', async () => {
    const created = parseCinderDict(await cinder(hearth.apiUrl, 'create', '--name', 'fits', String(fits)));
    const client = new ClusterClient(hearth);
    await client.waitStatus('volume', created.id!, 'available');
    await cinder(hearth.apiUrl, 'extend', created.id!, String(fits + tooBig));
    await client.waitStatus('volume', created.id!, 'available');
    expect(await client.record('volume', created.id!)).toMatchObject({ size: fits });
    const messages = parseCinderTable(await cinder(hearth.apiUrl, 'message-list'));
    expect(messages.find((m) => m['Resource UUID'] === created.id)).toMatchObject({ 'Event ID': 'VOLUME_VOLUME_007_003' });
  });
});
