// Copies through the real clients against a real single-node `hearth serve` (file driver):
// python-cinderclient 9.x unchanged (`cinder create --snapshot-id` / `--source-volid`), and
// `hearth volume create --snapshot-id` / `--source-volid`. The worker copies the files
// (`cp --sparse=always`), the volumes become available, and Cinder's errors come back as the
// clients print them.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { requireBinary } from '../../support/binaries.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';

const exec = promisify(execFile);
const GIB = 1024 ** 3;

/** A `| key | value |` row of cinder's property table. */
function property(table: string, key: string): string | undefined {
  const row = table.split('\n').find((l) => new RegExp(`^\\|\\s*${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*\\|`).test(l));
  return row?.split('|')[2]?.trim();
}

describe('copies through cinderclient and hearth volume (single node, file driver)', () => {
  let hearth: HearthProcess;
  let cinder: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  const hearthCli = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await runCli([...argv, '--url', hearth.apiUrl], { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) }, {});
    return { code, out, err };
  };
  const status = async (id: string): Promise<string | undefined> => property((await cinder('show', id)).stdout, 'status');
  const eventuallyAvailable = async (what: 'show' | 'snapshot-show', id: string): Promise<void> => {
    await expect.poll(async () => property((await cinder(what, id)).stdout, 'status'), { timeout: 30_000, interval: 200 }).toBe('available');
  };

  beforeAll(async () => {
    requireBinary('cinder', 'python3-cinderclient');
    hearth = await startHearth({ name: 'copies-clients' });
    const base = ['--os-auth-type', 'noauth', '--os-user-id', 'admin', '--os-project-id', 'admin', '--os-endpoint', `${hearth.apiUrl}/v3/admin`];
    cinder = async (...args) => {
      try {
        const { stdout, stderr } = await exec('cinder', [...base, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    };
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  let sourceId = '';
  let snapshotId = '';
  const made: string[] = [];

  it('cinder create --source-volid clones a volume (the source\'s size when none is given)', async () => {
    const source = await cinder('create', '--name', 'source', '2');
    expect(source.code, source.stderr).toBe(0);
    sourceId = property(source.stdout, 'id')!;
    await eventuallyAvailable('show', sourceId);
    const clone = await cinder('create', '--source-volid', sourceId, '--name', 'clone');
    expect(clone.code, clone.stderr).toBe(0);
    const id = property(clone.stdout, 'id')!;
    made.push(id);
    expect(property(clone.stdout, 'source_volid')).toBe(sourceId);
    expect(property(clone.stdout, 'size')).toBe('2');
    await eventuallyAvailable('show', id);
    const file = join(hearth.dataDir, 'volumes', `volume-${id}`);
    expect((await stat(file)).size).toBe(2 * GIB);
  });

  it('cinder snapshot-create, then cinder create --snapshot-id with a larger size', async () => {
    const snap = await cinder('snapshot-create', '--name', 'snap', sourceId);
    expect(snap.code, snap.stderr).toBe(0);
    snapshotId = property(snap.stdout, 'id')!;
    await eventuallyAvailable('snapshot-show', snapshotId);
    const restored = await cinder('create', '--snapshot-id', snapshotId, '3');
    expect(restored.code, restored.stderr).toBe(0);
    const id = property(restored.stdout, 'id')!;
    made.push(id);
    expect(property(restored.stdout, 'snapshot_id')).toBe(snapshotId);
    await eventuallyAvailable('show', id);
    expect((await stat(join(hearth.dataDir, 'volumes', `volume-${id}`))).size).toBe(3 * GIB);
  });

  it('cinder prints Cinder\'s errors: a missing source, a size smaller than the source', async () => {
    const missing = randomUUID();
    const notFound = await cinder('create', '--source-volid', missing);
    expect(notFound.code).toBe(1);
    expect(notFound.stdout + notFound.stderr).toContain(`Volume ${missing} could not be found. (HTTP 404)`);
    const small = await cinder('create', '--snapshot-id', snapshotId, '1');
    expect(small.code).toBe(1);
    expect(small.stdout + small.stderr).toContain("Volume size '1'GB cannot be smaller than the snapshot size 2GB. They must be >= original snapshot size. (HTTP 400)");
  });

  it('hearth volume create --source-volid and --snapshot-id; usage errors for both or neither', async () => {
    const clone = await hearthCli('volume', 'create', '--source-volid', sourceId, '--json');
    expect(clone.code, clone.err).toBe(0);
    const cloned = JSON.parse(clone.out) as { id: string; source_volid: string; size: number };
    expect(cloned).toMatchObject({ source_volid: sourceId, size: 2 });
    const fromSnap = await hearthCli('volume', 'create', '4', '--snapshot-id', snapshotId, '--name', 'from-snap');
    expect(fromSnap.code, fromSnap.err).toBe(0);
    expect(fromSnap.out).toMatch(new RegExp(`│ snapshot_id\\s+│ ${snapshotId}`));
    const id = /│ id\s+│ ([0-9a-f-]{36})/.exec(fromSnap.out)?.[1];
    made.push(cloned.id, id!);
    await eventuallyAvailable('show', cloned.id);
    await eventuallyAvailable('show', id!);
    expect((await hearthCli('volume', 'create', '--source-volid', sourceId, '--snapshot-id', snapshotId)).code).not.toBe(0);
    expect((await hearthCli('volume', 'create')).err).toMatch(/a size is needed unless --snapshot-id or --source-volid/);
  });

  it('the snapshot and the source are deleted once no copy holds them; the copies stay', async () => {
    const snapDelete = await cinder('snapshot-delete', snapshotId);
    expect(snapDelete.code, snapDelete.stderr).toBe(0);
    await expect.poll(async () => (await cinder('snapshot-show', snapshotId)).code, { timeout: 30_000, interval: 200 }).toBe(1);
    const del = await cinder('delete', sourceId);
    expect(del.code, del.stderr).toBe(0);
    await expect.poll(() => status(sourceId), { timeout: 30_000, interval: 200 }).toBeUndefined();
    for (const id of made) expect(await status(id)).toBe('available');
    expect(existsSync(join(hearth.dataDir, 'volumes', `volume-${sourceId}`))).toBe(false);
  });
});
