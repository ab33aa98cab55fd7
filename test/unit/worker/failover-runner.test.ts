// The cluster follower and the failover run on the single-node membership (the JSON record file):
// the record's failover is claimed once, the epoch raised before the driver runs, the result
// written in one update, and every follower serves what the record names.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DriverError } from '../../../src/errors.js';
import type { DriverContext, DriverReplication, ReplicationState } from '../../../src/drivers/volume-driver.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import type { Incarnation, Incarnations } from '../../../src/incarnation/incarnation.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import type { Member } from '../../../src/membership/membership.js';
import { claimFailover, FREEZE, startFailover, THAW } from '../../../src/membership/replication.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { ClusterFollower } from '../../../src/worker/cluster-follower.js';
import { FailoverRunner } from '../../../src/worker/failover-runner.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'c1@be';

/** A driver's replication half that records what it was asked (the file and fake drivers' own come from their branch). */
class RecordingReplication implements DriverReplication {
  readonly targetIds = ['dr1'];
  readonly calls: string[] = [];
  failWith: Error | undefined;
  private active = { backendId: 'default', epoch: 0 };

  state(): ReplicationState {
    return { status: this.active.backendId === 'default' ? 'enabled' : 'failed-over', activeBackendId: this.active.backendId, epoch: this.active.epoch };
  }

  async failover(backendId: string, epoch: number, ctx: DriverContext): Promise<void> {
    this.calls.push(`failover ${backendId} ${epoch} by ${ctx.member} at ${String(ctx.epoch)}`);
    if (this.failWith) throw this.failWith;
    this.active = { backendId, epoch };
  }

  async serve(backendId: string, epoch: number): Promise<void> {
    this.calls.push(`serve ${backendId} ${epoch}`);
    this.active = { backendId, epoch };
  }
}

describe('ClusterFollower and FailoverRunner (single node)', () => {
  let membership: LocalMembership;
  let member: Member;
  let replication: RecordingReplication;
  let follower: ClusterFollower;
  let runner: FailoverRunner;

  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-failover-'));
    membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), systemClock);
    replication = new RecordingReplication();
    member = await membership.join({ identity: { cluster: CLUSTER, host: 'h1@be', zone: 'nova' }, binary: VOLUME_BINARY, version: '0.2.0', session: TestSession.local('h1@be'), replication: { targetIds: ['dr1'] } });
    const incarnations: Incarnations = { current: () => ({ member }) as unknown as Incarnation, subscribe: () => () => undefined };
    const common = { clock: systemClock, retry: Backoff.constant(10), logger: silentLogger() };
    follower = new ClusterFollower({ membership, cluster: CLUSTER, binary: VOLUME_BINARY, replication, ...common });
    await follower.start();
    runner = new FailoverRunner({ membership, follower, incarnations, replication, cluster: CLUSTER, binary: VOLUME_BINARY, logger: silentLogger() });
    runner.start();
  });
  afterEach(async () => {
    await runner.close();
    await follower.close();
    await member.leave();
    await membership.close();
  });

  const record = async () => (await membership.snapshot()).clusters[0]!;

  it('takes jobs once applied, not while frozen, again after the thaw', async () => {
    expect(follower.takesJobs).toBe(true);
    expect(replication.calls).toEqual(['serve default 0']);
    await membership.updateCluster(CLUSTER, VOLUME_BINARY, FREEZE);
    await waitFor(async () => !follower.takesJobs, { what: 'frozen seen' });
    expect(follower.reason).toBe(`cluster ${CLUSTER} is frozen`);
    await membership.updateCluster(CLUSTER, VOLUME_BINARY, THAW);
    await waitFor(async () => follower.takesJobs, { what: 'thaw seen' });
  });

  it('runs a failover once: epoch raised, driver promoted, result written, every follower serving the target; then fails back', async () => {
    const before = membership.epochFence(CLUSTER, 0);
    await membership.updateCluster(CLUSTER, VOLUME_BINARY, startFailover('op-1', 'dr1', Date.now()));
    await waitFor(async () => (await record()).replicationStatus === 'failed-over', { what: 'failed over' });
    expect(await record()).toMatchObject({ activeBackendId: 'dr1', backendEpoch: 1, frozen: false, failover: null, disabled: true, disabledReason: 'failed-over' });
    expect(before.holds()).toBe(false);
    await waitFor(async () => follower.current() === 1, { what: 'epoch 1 served' });
    expect(replication.calls).toEqual(['serve default 0', 'failover dr1 1 by h1@be at 1', 'serve dr1 1']);
    expect(follower.takesJobs).toBe(true);

    await membership.updateCluster(CLUSTER, VOLUME_BINARY, startFailover('op-2', 'default', Date.now()));
    await waitFor(async () => (await record()).replicationStatus === 'enabled', { what: 'failed back' });
    expect(await record()).toMatchObject({ activeBackendId: null, backendEpoch: 2, disabled: false, disabledReason: null, failover: null });
    await waitFor(async () => follower.current() === 2, { what: 'epoch 2 served' });
  });

  it('a driver error leaves the cluster in failover-error, disabled, thawed, at the raised epoch', async () => {
    replication.failWith = new DriverError('test', 'failover', 'the target cannot be promoted');
    await membership.updateCluster(CLUSTER, VOLUME_BINARY, startFailover('op-1', 'dr1', Date.now()));
    await waitFor(async () => (await record()).replicationStatus === 'failover-error', { what: 'failover-error' });
    expect(await record()).toMatchObject({ activeBackendId: null, backendEpoch: 1, frozen: false, failover: null, disabled: true });
  });

  it('a failover whose claimant died is taken over and run again by the next incarnation', async () => {
    // The claimant: an earlier incarnation of this host, which claimed the failover and died.
    await runner.close();
    await membership.updateCluster(CLUSTER, VOLUME_BINARY, startFailover('op-1', 'dr1', Date.now()));
    const dead = member.owner;
    await membership.updateCluster(CLUSTER, VOLUME_BINARY, { ...claimFailover('op-1', dead), fence: member.fence() });
    await member.leave();
    member = await membership.join({ identity: { cluster: CLUSTER, host: 'h1@be', zone: 'nova' }, binary: VOLUME_BINARY, version: '0.2.0', session: TestSession.local('h1@be') });
    const fenced: string[] = [];
    const incarnations: Incarnations = { current: () => ({ member }) as unknown as Incarnation, subscribe: () => () => undefined };
    runner = new FailoverRunner({
      membership,
      follower,
      incarnations,
      replication,
      cluster: CLUSTER,
      binary: VOLUME_BINARY,
      logger: silentLogger(),
      awaitFence: async (owner) => {
        fenced.push(owner.incarnation);
        return true;
      },
    });
    runner.start();
    await waitFor(async () => (await record()).replicationStatus === 'failed-over', { what: 'failed over by the takeover' });
    expect(fenced).toEqual([dead.incarnation]);
    expect(await record()).toMatchObject({ activeBackendId: 'dr1', backendEpoch: 1, failover: null, frozen: false });
    expect(replication.calls.filter((c) => c.startsWith('failover'))).toEqual([`failover dr1 1 by h1@be at 1`]);
  });
});
