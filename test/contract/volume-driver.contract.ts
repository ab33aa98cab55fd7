import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, ClosedError, InvalidInputError } from '../../src/errors.js';
import type { DriverContext, VolumeDriver } from '../../src/drivers/volume-driver.js';

/** Makes a fresh driver (and frees what it used on `cleanup`). */
export type DriverFactory = () => Promise<{ readonly driver: VolumeDriver; cleanup(): Promise<void> }>;

let seq = 0;
function ctx(overrides: Partial<DriverContext> = {}): DriverContext {
  seq++;
  return { signal: new AbortController().signal, member: 'node1@be', opId: `op-${seq}`, ...overrides };
}

/**
 * The VolumeDriver contract: what every driver guarantees to the volume manager. Runs on the
 * file driver (a real temp directory) and the fake driver.
 */
export function describeVolumeDriverContract(name: string, make: DriverFactory): void {
  describe(`VolumeDriver contract: ${name}`, () => {
    let driver: VolumeDriver;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ driver, cleanup } = await make());
    });
    afterEach(async () => {
      await driver.close();
      await cleanup();
    });

    it('has a name and supports active/active', () => {
      expect(driver.name).toMatch(/^[a-z]+$/);
      expect(driver.supportsActiveActive).toBe(true);
    });

    it('reports a fresh backend up, and its pool with sane numbers', async () => {
      expect(await driver.health()).toEqual({ state: 'up' });
      const c = await driver.capacity();
      expect(c.totalBytes).toBeGreaterThan(0);
      expect(c.freeBytes).toBeGreaterThanOrEqual(0);
      expect(c.freeBytes).toBeLessThanOrEqual(c.totalBytes);
      expect(c.provisionedBytes).toBeGreaterThanOrEqual(c.allocatedBytes);
      expect(c.maxOverSubscriptionRatio).toBeGreaterThanOrEqual(1);
      expect(c.reservedPercentage).toBeGreaterThanOrEqual(0);
    });

    it('reports a closed driver down and refuses its capacity', async () => {
      await driver.close();
      expect((await driver.health()).state).toBe('down');
      await expect(driver.capacity()).rejects.toBeInstanceOf(ClosedError);
    });

    it('runs a whole volume life: create, snapshot, extend, delete snapshot, delete', async () => {
      await driver.createVolume({ id: 'vol-a', sizeGiB: 1 }, ctx());
      await driver.createSnapshot({ id: 'snap-a', volumeId: 'vol-a' }, ctx());
      await driver.extendVolume({ id: 'vol-a' }, 2, ctx());
      await driver.deleteSnapshot({ id: 'snap-a', volumeId: 'vol-a' }, ctx());
      await driver.deleteVolume({ id: 'vol-a' }, ctx());
    });

    it('makes every call idempotent: repeating a call that succeeded succeeds', async () => {
      const create = ctx();
      await driver.createVolume({ id: 'vol-b', sizeGiB: 1 }, create);
      await driver.createVolume({ id: 'vol-b', sizeGiB: 1 }, create);
      const snap = ctx();
      await driver.createSnapshot({ id: 'snap-b', volumeId: 'vol-b' }, snap);
      await driver.createSnapshot({ id: 'snap-b', volumeId: 'vol-b' }, snap);
      const extend = ctx();
      await driver.extendVolume({ id: 'vol-b' }, 3, extend);
      await driver.extendVolume({ id: 'vol-b' }, 3, extend);
      const dropSnap = ctx();
      await driver.deleteSnapshot({ id: 'snap-b', volumeId: 'vol-b' }, dropSnap);
      await driver.deleteSnapshot({ id: 'snap-b', volumeId: 'vol-b' }, dropSnap);
      const drop = ctx();
      await driver.deleteVolume({ id: 'vol-b' }, drop);
      await driver.deleteVolume({ id: 'vol-b' }, drop);
    });

    it('copies: clones a volume and creates one from a snapshot (larger too), idempotently, while the sources stay', async () => {
      await driver.createVolume({ id: 'src', sizeGiB: 1 }, ctx());
      await driver.createSnapshot({ id: 'src-snap', volumeId: 'src' }, ctx());
      for (let i = 0; i < 2; i++) {
        const clone = ctx();
        await driver.createClonedVolume({ id: 'clone', sizeGiB: 1 }, { id: 'src' }, clone);
        await driver.createClonedVolume({ id: 'clone', sizeGiB: 1 }, { id: 'src' }, clone);
        const restore = ctx();
        await driver.createVolumeFromSnapshot({ id: 'restored', sizeGiB: 2 }, { id: 'src-snap' }, restore);
        await driver.createVolumeFromSnapshot({ id: 'restored', sizeGiB: 2 }, { id: 'src-snap' }, restore);
        await driver.deleteVolume({ id: 'clone' }, ctx());
        await driver.deleteVolume({ id: 'restored' }, ctx());
      }
      await driver.deleteSnapshot({ id: 'src-snap', volumeId: 'src' }, ctx());
      await driver.deleteVolume({ id: 'src' }, ctx());
      const signal = AbortSignal.abort(new Error('lock lost'));
      await expect(driver.createClonedVolume({ id: 'x', sizeGiB: 1 }, { id: 'src' }, ctx({ signal }))).rejects.toBeInstanceOf(AbortedError);
      await expect(driver.createClonedVolume({ id: '../x', sizeGiB: 1 }, { id: 'src' }, ctx())).rejects.toBeInstanceOf(InvalidInputError);
    });

    it('connects a volume for a connector and answers the same when asked again; ends a connection, twice or never made', async () => {
      await driver.createVolume({ id: 'vol-c', sizeGiB: 1 }, ctx());
      const connector = { host: 'compute-1', mountpoint: '/dev/vdb' };
      const first = await driver.initializeConnection?.({ id: 'vol-c' }, connector, ctx());
      expect(first).toEqual({ driver_volume_type: expect.any(String) as string, data: expect.any(Object) as object });
      expect(await driver.initializeConnection?.({ id: 'vol-c' }, connector, ctx())).toEqual(first);
      await driver.terminateConnection?.({ id: 'vol-c' }, connector, ctx());
      await driver.terminateConnection?.({ id: 'vol-c' }, connector, ctx());
      await driver.terminateConnection?.({ id: 'vol-c' }, null, ctx());
      await expect(driver.initializeConnection?.({ id: '../x' }, connector, ctx())).rejects.toThrow();
    });

    it('deletes what never existed without complaint', async () => {
      await driver.deleteVolume({ id: 'never-created' }, ctx());
      await driver.deleteSnapshot({ id: 'never-created', volumeId: 'never-created' }, ctx());
    });

    it('refuses ids that are not plain names and sizes that are not whole GiB', async () => {
      for (const id of ['', '../etc', 'a/b', '.hidden', 'x'.repeat(300)]) {
        await expect(driver.createVolume({ id, sizeGiB: 1 }, ctx())).rejects.toBeInstanceOf(InvalidInputError);
        await expect(driver.deleteVolume({ id }, ctx())).rejects.toBeInstanceOf(InvalidInputError);
        await expect(driver.createSnapshot({ id, volumeId: 'vol' }, ctx())).rejects.toBeInstanceOf(InvalidInputError);
      }
      for (const sizeGiB of [0, -1, 1.5, Number.NaN]) {
        await expect(driver.createVolume({ id: 'vol-c', sizeGiB }, ctx())).rejects.toBeInstanceOf(InvalidInputError);
      }
    });

    it('does nothing once the call is aborted', async () => {
      const signal = AbortSignal.abort(new Error('lock lost'));
      await expect(driver.createVolume({ id: 'vol-d', sizeGiB: 1 }, ctx({ signal }))).rejects.toBeInstanceOf(AbortedError);
      await expect(driver.deleteVolume({ id: 'vol-d' }, ctx({ signal }))).rejects.toBeInstanceOf(AbortedError);
    });

    it('is closed by close(), which is idempotent', async () => {
      await driver.close();
      await driver.close();
      await expect(driver.createVolume({ id: 'vol-e', sizeGiB: 1 }, ctx())).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
