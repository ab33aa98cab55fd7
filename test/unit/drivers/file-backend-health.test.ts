import { chmod, mkdir, mkdtemp, readFile, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../../src/errors.js';
import { MARKER_FILE } from '../../../src/drivers/file-backend-check.js';
import { FileVolumeDriver, type FileVolumeDriverOptions } from '../../../src/drivers/file-volume-driver.js';
import { type DriverContext, GIB } from '../../../src/drivers/volume-driver.js';
import { mkfifo } from '../../support/sparse-files.js';

const ctx = (): DriverContext => ({ signal: new AbortController().signal, member: 'node1@be', opId: 'op-1' });

/** Resolves after `ms` of timers: proof that the event loop kept turning meanwhile. */
function ticks(ms: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => setTimeout(() => resolve(Date.now() - started), ms));
}

describe('file driver: backend health and capacity', () => {
  let root: string;
  let share: string;
  let stateDir: string;
  const drivers: FileVolumeDriver[] = [];
  const open = async (over: Partial<FileVolumeDriverOptions> = {}): Promise<FileVolumeDriver> => {
    const d = await FileVolumeDriver.open({ dir: share, cluster: 'c1@be', member: 'node1@be', stateDir, probeTimeoutMs: 2_000, ...over });
    drivers.push(d);
    return d;
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hearth-backend-health-'));
    share = join(root, 'share');
    stateDir = join(root, 'state');
    await mkdir(stateDir);
  });
  afterEach(async () => {
    for (const d of drivers.splice(0)) await d.close();
    await rm(root, { recursive: true, force: true });
  });

  it('writes the cluster marker on a first start, and remembers it', async () => {
    const driver = await open();
    const marker = JSON.parse(await readFile(join(share, MARKER_FILE), 'utf8')) as { cluster: string; id: string };
    expect(marker.cluster).toBe('c1@be');
    expect(JSON.parse(await readFile(join(stateDir, 'file-driver-marker.json'), 'utf8'))).toEqual(marker);
    expect(await driver.health()).toEqual({ state: 'up' });
  });

  it('a second member adopts the marker it finds instead of writing its own', async () => {
    await open();
    const first = await readFile(join(share, MARKER_FILE), 'utf8');
    const otherState = join(root, 'state2');
    await mkdir(otherState);
    const second = await open({ stateDir: otherState, member: 'node2@be' });
    expect(await readFile(join(share, MARKER_FILE), 'utf8')).toBe(first);
    expect(await second.health()).toEqual({ state: 'up' });
  });

  it('a share unmounted under a member that saw the marker: down, and no new marker is written; back up when it returns', async () => {
    // The member reaches the share through a path that an unmount turns into an empty directory.
    const real = join(root, 'real');
    await mkdir(real);
    await symlink(real, share);
    const driver = await open();
    expect(await driver.health()).toEqual({ state: 'up' });
    const empty = join(root, 'empty-mountpoint');
    await mkdir(empty);
    await unlink(share);
    await symlink(empty, share);
    const down = await driver.health();
    expect(down.state).toBe('down');
    expect(down.state === 'down' && down.reason).toMatch(/marker/);
    // A restart of the member must not "heal" it by writing a marker into the empty directory.
    const restarted = await open();
    expect((await restarted.health()).state).toBe('down');
    await expect(readFile(join(empty, MARKER_FILE))).rejects.toThrow(/ENOENT/);
    await unlink(share);
    await symlink(real, share);
    expect(await driver.health()).toEqual({ state: 'up' });
  });

  it('another cluster\'s directory is down, naming the cluster', async () => {
    await mkdir(join(share, '.hearth'), { recursive: true });
    await writeFile(join(share, MARKER_FILE), `${JSON.stringify({ cluster: 'other@be', id: 'x' })}\n`);
    const driver = await open();
    const health = await driver.health();
    expect(health.state === 'down' && health.reason).toMatch(/other@be/);
  });

  it('a probe that never returns (a FIFO nobody reads) is down within the timeout, keeps the event loop turning, is outstanding meanwhile, and never blocks close', async () => {
    const driver = await open({ probeTimeoutMs: 800, member: 'stuck@be' });
    mkfifo(join(share, '.hearth', 'probe-stuck@be'));
    const probe = driver.health();
    // While it hangs: the event loop turns, Node's file-system threads are free, and a second check is refused at once.
    const [waited, read, concurrent] = await Promise.all([ticks(100), readFile(join(share, MARKER_FILE), 'utf8'), driver.health()]);
    expect(waited).toBeLessThan(700);
    expect(read).toContain('c1@be');
    expect(concurrent.state === 'down' && concurrent.reason).toMatch(/has not returned/);
    const health = await probe;
    expect(health.state === 'down' && health.reason).toMatch(/did not finish within 800 ms/);
    // The hung probe was killed: the next check runs (and hangs again on the FIFO).
    const again = driver.health();
    await driver.close();
    expect((await again).state).toBe('down');
  });

  it('a statfs that fails reads as down, and capacity is an error, not zero', async () => {
    const bin = join(root, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'stat'), '#!/bin/sh\necho "stat: cannot read file system information: Input/output error" >&2\nexit 1\n');
    await chmod(join(bin, 'stat'), 0o755);
    const shell = join(bin, 'sh-with-broken-stat');
    await writeFile(shell, `#!/bin/sh\nPATH=${bin}:$PATH exec /bin/sh "$@"\n`);
    await chmod(shell, 0o755);
    const driver = await open({ shell });
    const health = await driver.health();
    expect(health.state === 'down' && health.reason).toMatch(/statfs failed: .*Input\/output error/);
    await expect(driver.capacity()).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it('a full file system is down', async () => {
    const driver = await open({ minFreeBytes: Number.MAX_SAFE_INTEGER });
    const health = await driver.health();
    expect(health.state === 'down' && health.reason).toMatch(/is full/);
  });

  it('capacity: statfs for total and free, volume files for allocated, volumes and snapshots for provisioned', async () => {
    const driver = await open({ pool: { maxOverSubscriptionRatio: 2.5, reservedPercentage: 10 } });
    await driver.createVolume({ id: 'v1', sizeGiB: 2 }, ctx());
    await driver.createVolume({ id: 'v2', sizeGiB: 1 }, ctx());
    await writeFile(join(share, 'snapshot-s1'), Buffer.alloc(4096));
    await writeFile(join(share, 'unrelated'), Buffer.alloc(4096));
    const c = await driver.capacity();
    expect(c.allocatedBytes).toBe(3 * GIB);
    expect(c.provisionedBytes).toBe(3 * GIB + 4096);
    expect(c.totalBytes).toBeGreaterThan(c.freeBytes);
    expect(c).toMatchObject({ thin: true, maxOverSubscriptionRatio: 2.5, reservedPercentage: 10 });
  });

  it('the marker moved away and back: down, then up', async () => {
    const driver = await open();
    await rename(join(share, MARKER_FILE), join(root, 'marker-aside'));
    expect((await driver.health()).state).toBe('down');
    await rename(join(root, 'marker-aside'), join(share, MARKER_FILE));
    expect((await driver.health()).state).toBe('up');
  });
});
