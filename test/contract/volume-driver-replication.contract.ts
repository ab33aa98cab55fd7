import { readdir, rename, rm, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError, CoordinatorError, DriverError, InvalidInputError } from '../../src/errors.js';
import { raiseEpochMarker, readEpochMarker, StaleEpochError } from '../../src/drivers/epoch-markers.js';
import type { DriverContext, DriverReplication, VolumeDriver } from '../../src/drivers/volume-driver.js';

/** A driver with replication. */
export type ReplicatingDriver = VolumeDriver & { readonly replication: DriverReplication };

/** What the replication contract needs of a driver: its storage, as directories per backend. */
export interface ReplicationSetup {
  /** A member's driver, replicating to the targets `dr1` and `dr2`. */
  readonly driver: ReplicatingDriver;
  /** Another member's driver on the same storage (closed by the suite). */
  another(): Promise<ReplicatingDriver>;
  /**
   * Another member whose calls take a while (a few hundred ms) between their first check and
   * the moment they publish what they wrote: a copy program that waits, a latency.
   */
  slowMember(): Promise<ReplicatingDriver>;
  /** The directory holding a backend's volumes and snapshots (its `volume-*`, `snapshot-*` files). */
  dirOf(backendId: string): string;
  cleanup(): Promise<void>;
}

/** Makes a fresh replicating driver on fresh temp directories. */
export type ReplicationFactory = () => Promise<ReplicationSetup>;

let seq = 0;
function ctx(overrides: Partial<DriverContext> = {}): DriverContext {
  seq++;
  return { signal: new AbortController().signal, member: 'node1@be', opId: `op-${seq}`, ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
}

/**
 * The replication contract (docs/drivers.md, "Replication"): synchronous copies to every target,
 * failover and failback at an epoch, the epoch fence at the storage, serve, unknown ids,
 * idempotent re-runs, and an unreachable backend. Runs on the file driver and the fake, each on
 * real temp directories.
 */
export function describeReplicationContract(name: string, make: ReplicationFactory): void {
  describe(`VolumeDriver replication contract: ${name}`, () => {
    let setup: ReplicationSetup;
    let driver: ReplicatingDriver;
    const others: VolumeDriver[] = [];
    beforeEach(async () => {
      setup = await make();
      driver = setup.driver;
    });
    afterEach(async () => {
      await driver.close();
      for (const d of others.splice(0)) await d.close();
      await setup.cleanup();
    });

    const another = async (): Promise<ReplicatingDriver> => {
      const d = await setup.another();
      others.push(d);
      return d;
    };
    /** The volumes and snapshots a backend holds. */
    const inventory = async (backendId: string): Promise<string[]> =>
      (await readdir(setup.dirOf(backendId))).filter((n) => /^(volume|snapshot)-/.test(n)).sort();
    /** Makes a backend unreachable (a file where its directory was); returns the repair. */
    const cutOff = async (backendId: string): Promise<() => Promise<void>> => {
      const dir = setup.dirOf(backendId);
      await rename(dir, `${dir}.away`);
      await writeFile(dir, 'not a directory\n');
      return async () => {
        await rm(dir, { force: true });
        await rename(`${dir}.away`, dir);
      };
    };

    it('starts enabled on the primary at epoch 0, naming its targets', () => {
      expect(driver.replication.targetIds).toEqual(['dr1', 'dr2']);
      expect(driver.replication.state()).toEqual({ status: 'enabled', activeBackendId: 'default', epoch: 0 });
    });

    it('copies every kind of change to every target by the end of the call', async () => {
      const steps: [string, () => Promise<void>, string[]][] = [
        ['create', () => driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx()), ['volume-v1']],
        ['snapshot', () => driver.createSnapshot({ id: 's1', volumeId: 'v1' }, ctx()), ['snapshot-s1', 'volume-v1']],
        ['clone', () => driver.createClonedVolume({ id: 'v2', sizeGiB: 1 }, { id: 'v1' }, ctx()), ['snapshot-s1', 'volume-v1', 'volume-v2']],
        ['from snapshot', () => driver.createVolumeFromSnapshot({ id: 'v3', sizeGiB: 2 }, { id: 's1' }, ctx()), ['snapshot-s1', 'volume-v1', 'volume-v2', 'volume-v3']],
        ['extend', () => driver.extendVolume({ id: 'v1' }, 3, ctx()), ['snapshot-s1', 'volume-v1', 'volume-v2', 'volume-v3']],
        ['delete snapshot', () => driver.deleteSnapshot({ id: 's1', volumeId: 'v1' }, ctx()), ['volume-v1', 'volume-v2', 'volume-v3']],
        ['delete volume', () => driver.deleteVolume({ id: 'v2' }, ctx()), ['volume-v1', 'volume-v3']],
      ];
      for (const [step, run, expected] of steps) {
        await run();
        for (const backend of ['default', 'dr1', 'dr2']) expect({ step, backend, files: await inventory(backend) }).toEqual({ step, backend, files: expected });
      }
    });

    it('fails over: the target serves, the primary is not written, and the epoch is marked on every backend', async () => {
      await driver.createVolume({ id: 'before', sizeGiB: 1 }, ctx());
      await driver.replication.failover('dr1', 1, ctx());
      expect(driver.replication.state()).toEqual({ status: 'failed-over', activeBackendId: 'dr1', epoch: 1 });
      await driver.createVolume({ id: 'after', sizeGiB: 1 }, ctx({ epoch: 1 }));
      await driver.extendVolume({ id: 'before' }, 2, ctx({ epoch: 1 }));
      expect(await inventory('dr1')).toEqual(['volume-after', 'volume-before']);
      expect(await inventory('dr2')).toEqual(['volume-after', 'volume-before']);
      expect(await inventory('default')).toEqual(['volume-before']);
      for (const backend of ['default', 'dr1', 'dr2']) expect((await readEpochMarker(setup.dirOf(backend)))?.epoch).toBe(1);
      expect(await driver.health()).toEqual({ state: 'up' });
    });

    it('refuses a call under an older epoch, or none, writing nothing — a member that missed the failover cannot touch the old primary', async () => {
      const stale = await another();
      await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
      await driver.replication.failover('dr1', 1, ctx());
      const before = { primary: await inventory('default'), dr1: await inventory('dr1') };
      // `stale` still serves the primary at epoch 0, as a partitioned member would.
      expect(stale.replication.state()).toMatchObject({ activeBackendId: 'default', epoch: 0 });
      for (const call of [
        () => stale.createVolume({ id: 'late', sizeGiB: 1 }, ctx({ epoch: 0 })),
        () => stale.deleteVolume({ id: 'v1' }, ctx()),
        () => stale.createSnapshot({ id: 'late-snap', volumeId: 'v1' }, ctx({ epoch: 0 })),
        () => driver.createVolume({ id: 'late', sizeGiB: 1 }, ctx({ epoch: 0 })),
      ]) {
        const err = await rejection(call());
        expect(err).toBeInstanceOf(StaleEpochError);
        expect((err as StaleEpochError).retryable).toBe(false);
        expect((err as StaleEpochError).reason).toBe('stale-epoch');
        expect((err as DriverError).message).toMatch(/stale backend epoch 0/);
      }
      expect({ primary: await inventory('default'), dr1: await inventory('dr1') }).toEqual(before);
    });

    it('a call in flight across a failover publishes nothing on the old primary: its last step meets the new epoch', async () => {
      await driver.createVolume({ id: 'src', sizeGiB: 1 }, ctx());
      const slow = await setup.slowMember();
      others.push(slow);
      const copying = rejection(slow.createClonedVolume({ id: 'copy', sizeGiB: 1 }, { id: 'src' }, ctx({ member: 'node2@be' })));
      await driver.replication.failover('dr1', 1, ctx());
      const err = await copying;
      expect(err).toBeInstanceOf(StaleEpochError);
      expect(err).toMatchObject({ callEpoch: 0, currentEpoch: 1 });
      expect(await inventory('default')).toEqual(['volume-src']);
      expect(await inventory('dr1')).toEqual(['volume-src']);
    });

    it('refuses a call under a newer epoch than the member serves (retryable: serve first), then serves it', async () => {
      const member = await another();
      await driver.replication.failover('dr1', 1, ctx());
      const err = await rejection(member.createVolume({ id: 'v', sizeGiB: 1 }, ctx({ epoch: 1 })));
      expect(err).toBeInstanceOf(DriverError);
      expect((err as DriverError).retryable).toBe(true);
      await member.replication.serve('dr1', 1);
      await member.replication.serve('dr1', 1);
      expect(member.replication.state()).toEqual({ status: 'failed-over', activeBackendId: 'dr1', epoch: 1 });
      await member.createVolume({ id: 'v', sizeGiB: 1 }, ctx({ epoch: 1 }));
      expect(await inventory('dr1')).toEqual(['volume-v']);
      expect(await inventory('default')).toEqual([]);
    });

    it('fails back: the changes made while failed over are copied to the primary before it serves again', async () => {
      await driver.createVolume({ id: 'kept', sizeGiB: 1 }, ctx());
      await driver.createVolume({ id: 'dropped', sizeGiB: 1 }, ctx());
      await driver.replication.failover('dr1', 1, ctx());
      await driver.createVolume({ id: 'new', sizeGiB: 1 }, ctx({ epoch: 1 }));
      await driver.createSnapshot({ id: 'new-snap', volumeId: 'new' }, ctx({ epoch: 1 }));
      await driver.extendVolume({ id: 'kept' }, 2, ctx({ epoch: 1 }));
      await driver.deleteVolume({ id: 'dropped' }, ctx({ epoch: 1 }));
      await driver.replication.failover('default', 2, ctx());
      expect(driver.replication.state()).toEqual({ status: 'enabled', activeBackendId: 'default', epoch: 2 });
      const expected = ['snapshot-new-snap', 'volume-kept', 'volume-new'];
      for (const backend of ['default', 'dr1', 'dr2']) expect(await inventory(backend)).toEqual(expected);
      await driver.deleteVolume({ id: 'kept' }, ctx({ epoch: 2 }));
      for (const backend of ['default', 'dr1', 'dr2']) expect(await inventory(backend)).toEqual(['snapshot-new-snap', 'volume-new']);
    });

    it('refuses an unknown backend id (InvalidInputError) and writes no marker', async () => {
      for (const call of [() => driver.replication.failover('nowhere', 1, ctx()), () => driver.replication.serve('nowhere', 1)]) {
        const err = await rejection(call());
        expect(err).toBeInstanceOf(InvalidInputError);
        expect((err as Error).message).toMatch(/nowhere/);
      }
      await expect(driver.replication.failover('dr1', -1, ctx())).rejects.toBeInstanceOf(InvalidInputError);
      for (const backend of ['default', 'dr1', 'dr2']) expect(await readEpochMarker(setup.dirOf(backend))).toBeUndefined();
      expect(driver.replication.state()).toEqual({ status: 'enabled', activeBackendId: 'default', epoch: 0 });
    });

    it('finishes a failover run again: by the same member, by another, and after a runner that died with the marker half written', async () => {
      await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
      // A runner died after marking the primary only: the re-run copies from the same side and completes.
      await raiseEpochMarker(setup.dirOf('default'), { epoch: 1, active: 'dr1', from: 'default' });
      await driver.replication.failover('dr1', 1, ctx());
      await driver.replication.failover('dr1', 1, ctx());
      const other = await another();
      await other.replication.failover('dr1', 1, ctx());
      for (const d of [driver, other]) expect(d.replication.state()).toEqual({ status: 'failed-over', activeBackendId: 'dr1', epoch: 1 });
      for (const backend of ['default', 'dr1', 'dr2']) expect(await readEpochMarker(setup.dirOf(backend))).toEqual({ epoch: 1, active: 'dr1', from: 'default' });
      expect(await inventory('dr1')).toEqual(['volume-v1']);
      // Another backend at the same epoch, or an older epoch, is refused.
      await expect(driver.replication.failover('dr2', 1, ctx())).rejects.toBeInstanceOf(DriverError);
      await expect(driver.replication.failover('default', 0, ctx())).rejects.toBeInstanceOf(StaleEpochError);
    });

    it('fails a call whose target cannot be reached, retryably; the repeat finishes the copy once it is back', async () => {
      const repair = await cutOff('dr2');
      const err = await rejection(driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx()));
      expect(err).toBeInstanceOf(DriverError);
      expect((err as DriverError).retryable).toBe(true);
      expect((err as Error).message).toMatch(/replica/);
      expect(driver.replication.state().status).toBe('enabled');
      await repair();
      await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
      for (const backend of ['default', 'dr1', 'dr2']) expect(await inventory(backend)).toEqual(['volume-v1']);
    });

    it('fails over with the primary unreachable (the disaster case), and fails back over whatever the primary got meanwhile', async () => {
      await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx());
      const repair = await cutOff('default');
      await driver.replication.failover('dr1', 1, ctx());
      expect(driver.replication.state()).toEqual({ status: 'failed-over', activeBackendId: 'dr1', epoch: 1 });
      await driver.createVolume({ id: 'v2', sizeGiB: 1 }, ctx({ epoch: 1 }));
      await repair();
      // The primary missed the marker; a stray file on it is overwritten by the failback.
      await writeFile(`${setup.dirOf('default')}/volume-stray`, '');
      await driver.replication.failover('default', 2, ctx());
      expect(await inventory('default')).toEqual(['volume-v1', 'volume-v2']);
      expect((await readEpochMarker(setup.dirOf('default')))?.epoch).toBe(2);
    });

    it('reports failover-error when a failback cannot copy back, keeps serving the target, and recovers on a repeat', async () => {
      await driver.replication.failover('dr1', 1, ctx());
      await driver.createVolume({ id: 'v1', sizeGiB: 1 }, ctx({ epoch: 1 }));
      const repair = await cutOff('default');
      const err = await rejection(driver.replication.failover('default', 2, ctx()));
      expect(err).toBeInstanceOf(CoordinatorError);
      expect((err as CoordinatorError).retryable).toBe(true);
      expect(driver.replication.state()).toEqual({ status: 'failover-error', activeBackendId: 'dr1', epoch: 1 });
      await repair();
      await driver.replication.failover('default', 2, ctx());
      expect(driver.replication.state()).toEqual({ status: 'enabled', activeBackendId: 'default', epoch: 2 });
      expect(await inventory('default')).toEqual(['volume-v1']);
    });

    it('is disabled once closed, and refuses to fail over', async () => {
      await driver.close();
      expect(driver.replication.state().status).toBe('disabled');
      await expect(driver.replication.failover('dr1', 1, ctx())).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
