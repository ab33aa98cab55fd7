import { Backoff } from '../../src/lifecycle/retry.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlreadyAliveError, CoordinatorError } from '../../src/errors.js';
import type { Fence } from '../../src/fence.js';
import { type Identity, VOLUME_BINARY } from '../../src/identity.js';
import { type ManualClock } from '../../src/lifecycle/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { IncarnationEnd } from '../../src/membership/incarnation-records.js';
import type { Member, Membership, MembershipEvent } from '../../src/membership/membership.js';
import { claimFailover, FREEZE, finishFailover, startFailover, THAW } from '../../src/membership/replication.js';
import { MembershipMetrics } from '../../src/membership/metrics.js';
import { MembershipMonitor } from '../../src/membership/monitor.js';
import type { IncarnationEvent } from '../../src/incarnation/incarnation.js';
import { IncarnationSupervisor } from '../../src/incarnation/supervisor.js';
import { LocalLockService } from '../../src/locks/local-lock-service.js';
import { buildClusterViews, buildServiceViews } from '../../src/api/cluster-views.js';
import { Registry } from 'prom-client';
import { recordingLogger } from '../support/recording-logger.js';
import type { TestSession } from '../support/test-session.js';
import { waitFor } from '../support/wait.js';

/** One backend prepared for the membership contract. */
export interface MembershipFixture {
  readonly membership: Membership;
  readonly clock: ManualClock;
  /** Another adapter on the same store, as a second worker process opens it (local: the same one). */
  second(): Promise<Membership>;
  /** A fresh adapter on the same store, as after a restart of this process. */
  restarted(): Promise<Membership>;
  openSession(host: string): Promise<TestSession>;
  /** Whether a write made under `fence` would commit now (its guards and `holds()`). */
  fenceHolds(fence: Fence): Promise<boolean>;
  close(): Promise<void>;
}

const CLUSTER = 'c1@be';
const WAITING_FOR_EARLIER = 'an earlier incarnation of this host is still alive; waiting for it to expire';
const BINARY = VOLUME_BINARY;

function identity(host: string): Identity {
  return { cluster: CLUSTER, host, zone: 'nova' };
}

/** Collects a watch's events into an array until the returned stop() is called. */
function collect(membership: Membership): { events: MembershipEvent[]; stop: () => void } {
  const ctl = new AbortController();
  const events: MembershipEvent[] = [];
  void (async () => {
    for await (const e of membership.watch(ctl.signal)) events.push(e);
  })();
  return { events, stop: () => ctl.abort() };
}

/**
 * The membership contract: every adapter (single-node and etcd) must pass it.
 * `makeFixture` builds a fresh, empty store for each test.
 */
export function describeMembership(name: string, makeFixture: () => Promise<MembershipFixture>): void {
  describe(`Membership contract: ${name}`, () => {
    let fx: MembershipFixture;
    let sessions: TestSession[];
    const join = async (host: string, m: Membership = fx.membership): Promise<{ member: Member; session: TestSession }> => {
      const session = await fx.openSession(host);
      sessions.push(session);
      const member = await m.join({ identity: identity(host), binary: BINARY, version: '0.1.0', session });
      return { member, session };
    };

    beforeEach(async () => {
      fx = await makeFixture();
      sessions = [];
    });
    afterEach(async () => {
      await Promise.all(sessions.map((s) => s.close()));
      await fx.close();
    });

    it('joins: writes the service record, creates the cluster record, and is alive', async () => {
      const { member, session } = await join('h1@be');
      expect(member.joined).toBe(true);
      expect(member.cluster).toBe(CLUSTER);
      expect(member.owner.host).toBe('h1@be');
      expect(member.owner.incarnation).toBe(session.incarnation);
      expect(member.owner.aliveRevision).toEqual(fx.membership.distributed ? expect.stringMatching(/^[1-9]\d*$/) : '0');
      const snap = await fx.membership.snapshot();
      expect(snap.clusters).toEqual([expect.objectContaining({ name: CLUSTER, binary: BINARY, disabled: false, createdAtMs: fx.clock.now() })]);
      expect(snap.services).toEqual([expect.objectContaining({ host: 'h1@be', cluster: CLUSTER, zone: 'nova', version: '0.1.0', startedAtMs: fx.clock.now() })]);
      expect(snap.alive).toEqual([{ host: 'h1@be', cluster: CLUSTER, incarnation: session.incarnation, heartbeatAtMs: fx.clock.now(), aliveRevision: member.owner.aliveRevision }]);
      expect(buildClusterViews(snap)[0]).toMatchObject({ up: true, numHosts: 1, numDownHosts: 0, lastHeartbeatMs: fx.clock.now() });
      expect(buildServiceViews(snap)[0]).toMatchObject({ host: 'h1@be', up: true, cluster: CLUSTER });
    });

    it('creates exactly one cluster record when two workers start at once', async () => {
      const other = await fx.second();
      const results = await Promise.allSettled([join('h1@be'), join('h2@be', other)]);
      const snap = await fx.membership.snapshot();
      expect(snap.clusters).toHaveLength(1);
      if (fx.membership.distributed) {
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
        expect(buildClusterViews(snap)[0]).toMatchObject({ numHosts: 2, numDownHosts: 0, up: true });
      } else {
        // A single node refuses to pose as a cluster of two hosts.
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(refused).toHaveLength(1);
        expect(refused[0]!.reason).toMatchObject({ code: 'NOT_DISTRIBUTED' });
        expect(snap.services).toHaveLength(1);
      }
    });

    it('refuses a host alive under another incarnation, and lets it rejoin as a new incarnation after it left', async () => {
      const first = await join('h1@be');
      const err = await join('h1@be').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AlreadyAliveError);
      expect(err).toMatchObject({ code: 'ALREADY_ALIVE', host: 'h1@be', holder: first.session.incarnation });
      expect(first.member.joined).toBe(true);
      const created = (await fx.membership.snapshot()).services[0]!.createdAtMs;
      await first.member.leave();
      await fx.clock.advance(1_000);
      const again = await join('h1@be');
      expect(again.member.owner.incarnation).not.toBe(first.member.owner.incarnation);
      if (fx.membership.distributed) expect(BigInt(again.member.owner.aliveRevision)).toBeGreaterThan(BigInt(first.member.owner.aliveRevision));
      const snap = await fx.membership.snapshot();
      expect(snap.services[0]).toMatchObject({ createdAtMs: created, startedAtMs: fx.clock.now() });
      expect(snap.alive.map((a) => a.incarnation)).toEqual([again.session.incarnation]);
    });

    it('a backend report goes into the alive entry at once and stays there through later heartbeats', async () => {
      const { member } = await join('h1@be');
      expect((await fx.membership.snapshot()).alive[0]?.backend).toBeUndefined();
      const pool = { totalBytes: 100, freeBytes: 60, provisionedBytes: 30, allocatedBytes: 20, thin: true, maxOverSubscriptionRatio: 20, reservedPercentage: 0, driver: 'file', atMs: fx.clock.now() };
      const down = { state: 'down' as const, reason: 'marker missing', checkedAtMs: fx.clock.now(), pool };
      expect((await member.reportBackend(down)).ok).toBe(true);
      expect((await fx.membership.snapshot()).alive[0]?.backend).toEqual(down);
      await fx.clock.advance(1_000);
      expect((await member.heartbeat()).ok).toBe(true);
      const other = await fx.second();
      expect((await other.snapshot()).alive[0]?.backend).toEqual(down);
      await member.leave();
      expect(await member.reportBackend({ ...down, state: 'up', reason: null })).toEqual({ ok: false, reason: 'left' });
    });

    it('leaving makes the member down at once, keeps its record with a last heartbeat, and is idempotent', async () => {
      const { member } = await join('h1@be');
      await fx.clock.advance(2_500);
      await member.leave();
      await member.leave();
      expect(member.joined).toBe(false);
      expect(member.signal.aborted).toBe(true);
      const snap = await fx.membership.snapshot();
      expect(snap.alive).toEqual([]);
      expect(snap.services[0]).toMatchObject({ host: 'h1@be', heartbeatAtMs: fx.clock.now() });
      expect(buildClusterViews(snap)[0]).toMatchObject({ up: false, numHosts: 1, numDownHosts: 1, lastHeartbeatMs: fx.clock.now() });
      expect(await member.heartbeat()).toEqual({ ok: false, reason: 'left' });
    });

    it('heartbeats refresh the time in the alive entry and the service record', async () => {
      const { member } = await join('h1@be');
      await fx.clock.advance(5_000);
      expect(await member.heartbeat()).toEqual({ ok: true, atMs: fx.clock.now() });
      const snap = await fx.membership.snapshot();
      expect(snap.alive[0]).toMatchObject({ heartbeatAtMs: fx.clock.now(), aliveRevision: member.owner.aliveRevision });
      expect(snap.services[0]).toMatchObject({ heartbeatAtMs: fx.clock.now(), startedAtMs: fx.clock.now() - 5_000 });
    });

    it('the alive fence holds while joined, and not after leaving or once the host runs again', async () => {
      const first = await join('h1@be');
      const fence = first.member.fence();
      expect(await fx.fenceHolds(fence)).toBe(true);
      await first.member.leave();
      expect(await fx.fenceHolds(fence)).toBe(false);
      const second = await join('h1@be');
      expect(await fx.fenceHolds(fence)).toBe(false);
      expect(await fx.fenceHolds(second.member.fence())).toBe(true);
    });

    it('the dead-owner proof holds only once the owner incarnation is gone, even if the host restarted', async () => {
      const first = await join('h1@be');
      const proof = fx.membership.ownerGone(first.member.owner);
      expect(await fx.fenceHolds(proof)).toBe(false);
      await first.member.leave();
      expect(await fx.fenceHolds(proof)).toBe(true);
      const second = await join('h1@be');
      expect(await fx.fenceHolds(proof)).toBe(true);
      expect(await fx.fenceHolds(fx.membership.ownerGone(second.member.owner))).toBe(false);
    });

    it('ends the membership when the session is lost or closed', async () => {
      const gone = (host: string) => async () => !(await fx.membership.snapshot()).alive.some((m) => m.host === host);
      const a = await join('h1@be');
      a.session.markLost();
      expect(a.member.joined).toBe(false);
      expect(a.member.signal.aborted).toBe(true);
      expect(await fx.fenceHolds(a.member.fence())).toBe(false);
      await a.session.close();
      await waitFor(gone('h1@be'), { what: 'h1 gone after revoke' });
      const b = await join('h1@be');
      await b.session.close();
      expect(b.member.joined).toBe(false);
      await waitFor(gone('h1@be'), { what: 'h1 gone again' });
    });

    it('refuses to join on a session that is not held', async () => {
      const session = await fx.openSession('h1@be');
      sessions.push(session);
      session.markLost();
      await expect(fx.membership.join({ identity: identity('h1@be'), binary: BINARY, version: '1', session })).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    });

    it('enables and disables clusters; an unknown name or binary gives undefined; the setting survives a restart', async () => {
      await join('h1@be');
      await fx.clock.advance(1_000);
      const disabled = await fx.membership.setClusterDisabled(CLUSTER, BINARY, true, 'maint');
      expect(disabled).toMatchObject({ name: CLUSTER, disabled: true, disabledReason: 'maint', updatedAtMs: fx.clock.now() });
      expect(await fx.membership.setClusterDisabled('nope@be', BINARY, true, null)).toBeUndefined();
      expect(await fx.membership.setClusterDisabled(CLUSTER, 'cinder-backup', true, null)).toBeUndefined();
      const after = await fx.restarted();
      expect(buildClusterViews(await after.snapshot())[0]).toMatchObject({ disabled: true, disabledReason: 'maint' });
      const enabled = await after.setClusterDisabled(CLUSTER, BINARY, false, 'ignored');
      expect(enabled).toMatchObject({ disabled: false, disabledReason: null });
      await after.close();
    });

    describe('replication: the cluster record by conditional update, and the backend epoch', () => {
      it('a member joining with a replicating driver records its targets and turns a not-capable cluster enabled', async () => {
        const session = await fx.openSession('h1@be');
        sessions.push(session);
        await fx.membership.join({ identity: identity('h1@be'), binary: BINARY, version: '0.2.0', session, replication: { targetIds: ['dr1'] } });
        const snap = await fx.membership.snapshot();
        expect(snap.clusters[0]).toMatchObject({ replicationStatus: 'enabled', replicationTargets: ['dr1'], backendEpoch: 0, failover: null, activeBackendId: null });
        expect(snap.services[0]).toMatchObject({ replicationStatus: 'enabled' });
      });

      it('a member without replication leaves the cluster not-capable, with release 2 fields at their defaults', async () => {
        await join('h1@be');
        expect((await fx.membership.snapshot()).clusters[0]).toMatchObject({ replicationStatus: 'not-capable', replicationTargets: [], backendEpoch: 0, failover: null });
      });

      it('freeze and thaw are one conditional update each; the failed condition is named and nothing is written', async () => {
        await join('h1@be');
        await fx.clock.advance(1_000);
        expect(await fx.membership.updateCluster(CLUSTER, BINARY, FREEZE)).toMatchObject({ ok: true, record: { frozen: true, updatedAtMs: fx.clock.now() }, previous: { frozen: false } });
        const again = await fx.membership.updateCluster(CLUSTER, BINARY, FREEZE);
        expect(again).toMatchObject({ ok: false, reason: 'condition', failed: { field: 'frozen', expected: false, actual: true } });
        expect(await fx.membership.updateCluster(CLUSTER, BINARY, THAW)).toMatchObject({ ok: true, record: { frozen: false } });
        expect(await fx.membership.updateCluster('nope@be', BINARY, FREEZE)).toEqual({ ok: false, reason: 'not-found' });
        expect(await fx.membership.updateCluster(CLUSTER, 'cinder-backup', FREEZE)).toEqual({ ok: false, reason: 'not-found' });
        const after = await fx.restarted();
        expect((await after.snapshot()).clusters[0]).toMatchObject({ frozen: false });
        await after.close();
      });

      it('a failover: refused from not-capable; started, claimed once, finished by its owner only', async () => {
        const { member } = await join('h1@be');
        const refused = await fx.membership.updateCluster(CLUSTER, BINARY, startFailover('op-1', 'dr1', fx.clock.now()));
        expect(refused).toMatchObject({ ok: false, failed: { field: 'replicationStatus', expected: ['enabled', 'failed-over'], actual: 'not-capable' } });
        await fx.membership.updateCluster(CLUSTER, BINARY, { expect: {}, set: () => ({ replicationStatus: 'enabled', replicationTargets: ['dr1'] }) });
        const started = await fx.membership.updateCluster(CLUSTER, BINARY, startFailover('op-1', 'dr1', fx.clock.now()));
        expect(started).toMatchObject({ ok: true, record: { replicationStatus: 'failing-over', frozen: true, failover: { opId: 'op-1', backendId: 'dr1', epoch: 1, owner: null, frozeIt: true } } });
        const twice = await fx.membership.updateCluster(CLUSTER, BINARY, startFailover('op-2', 'dr1', fx.clock.now()));
        expect(twice).toMatchObject({ ok: false, failed: { field: 'replicationStatus', actual: 'failing-over' } });
        expect(await fx.membership.updateCluster(CLUSTER, BINARY, THAW)).toMatchObject({ ok: false, failed: { field: 'failover', expected: null, actual: 'op-1' } });
        const { owner } = member;
        const claimed = await fx.membership.updateCluster(CLUSTER, BINARY, { ...claimFailover('op-1', owner), fence: member.fence() });
        expect(claimed).toMatchObject({ ok: true, record: { failover: { owner } } });
        expect(await fx.membership.updateCluster(CLUSTER, BINARY, claimFailover('op-1', owner))).toMatchObject({ ok: false, failed: { field: 'failover.owner', expected: null, actual: owner.incarnation } });
        expect(await fx.membership.updateCluster(CLUSTER, BINARY, finishFailover('op-1', 'someone-else', { result: 'promoted' }))).toMatchObject({ ok: false, failed: { field: 'failover.owner' } });
        const done = await fx.membership.updateCluster(CLUSTER, BINARY, finishFailover('op-1', owner.incarnation, { result: 'promoted' }));
        expect(done).toMatchObject({
          ok: true,
          record: { replicationStatus: 'failed-over', activeBackendId: 'dr1', backendEpoch: 1, frozen: false, failover: null, disabled: true, disabledReason: 'failed-over' },
        });
      });

      it('watchCluster gives the record now, then each change, from any adapter on the store', async () => {
        const ctl = new AbortController();
        const seen: (boolean | undefined)[] = [];
        void (async () => {
          for await (const e of fx.membership.watchCluster(CLUSTER, BINARY, ctl.signal)) seen.push(e.record?.frozen);
        })();
        await waitFor(async () => seen.length > 0, { what: 'the first value' });
        expect(seen[0]).toBeUndefined();
        await join('h1@be');
        await waitFor(async () => seen.at(-1) === false, { what: 'the record created' });
        const other = await fx.second();
        await other.updateCluster(CLUSTER, BINARY, FREEZE);
        await waitFor(async () => seen.at(-1) === true, { what: 'frozen seen' });
        await fx.membership.updateCluster(CLUSTER, BINARY, THAW);
        await waitFor(async () => seen.at(-1) === false, { what: 'thawed seen' });
        ctl.abort();
      });

      it('a writer whose fence fails changes nothing', async () => {
        const { member } = await join('h1@be');
        const fence = member.fence();
        await member.leave();
        await expect(fx.membership.updateCluster(CLUSTER, BINARY, { ...FREEZE, fence })).rejects.toMatchObject({ code: 'FENCED' });
        expect((await fx.membership.snapshot()).clusters[0]).toMatchObject({ frozen: false });
      });

      it('the backend epoch rises one at a time, idempotently, and its fence holds only at the epoch it names', async () => {
        await join('h1@be');
        const at0 = fx.membership.epochFence(CLUSTER, 0);
        expect(await fx.fenceHolds(at0)).toBe(true);
        expect(await fx.membership.advanceEpoch(CLUSTER, 2)).toEqual({ ok: false, actual: 0 });
        expect(await fx.membership.advanceEpoch(CLUSTER, 1)).toEqual({ ok: true });
        expect(await fx.membership.advanceEpoch(CLUSTER, 1)).toEqual({ ok: true });
        expect(await fx.fenceHolds(at0)).toBe(false);
        expect(await fx.fenceHolds(fx.membership.epochFence(CLUSTER, 1))).toBe(true);
        const after = await fx.restarted();
        expect(await fx.fenceHolds(after.epochFence(CLUSTER, 1))).toBe(true);
        expect(await after.advanceEpoch(CLUSTER, 2)).toEqual({ ok: true });
        expect(await fx.fenceHolds(after.epochFence(CLUSTER, 1))).toBe(false);
        await after.close();
      });
    });

    it('removes the record of a host that is down (cinder-manage service remove), never of one alive; unknown is not-found', async () => {
      expect(await fx.membership.removeService(BINARY, 'nobody@be')).toEqual({ ok: false, reason: 'not-found' });
      const { member } = await join('h1@be');
      expect(await fx.membership.removeService(BINARY, 'h1@be')).toEqual({ ok: false, reason: 'alive', incarnation: member.owner.incarnation });
      expect((await fx.membership.snapshot()).services.map((s) => s.host)).toEqual(['h1@be']);
      await member.leave();
      const removed = await fx.membership.removeService(BINARY, 'h1@be');
      expect(removed).toEqual({ ok: true, service: expect.objectContaining({ host: 'h1@be', binary: BINARY, cluster: CLUSTER }) as unknown });
      const snap = await fx.membership.snapshot();
      expect(snap.services).toEqual([]);
      // The cluster record stays; a later join writes a fresh service record.
      expect(snap.clusters.map((c) => c.name)).toEqual([CLUSTER]);
      expect(await fx.membership.removeService(BINARY, 'h1@be')).toEqual({ ok: false, reason: 'not-found' });
      await join('h1@be');
      expect((await fx.membership.snapshot()).services.map((s) => s.host)).toEqual(['h1@be']);
    });

    it('gives each service a stable integer id (Cinder services.id) that survives heartbeats, leaving, rejoining and a restart', async () => {
      const first = await join('h1@be');
      const idOf = async (m: Membership, host: string): Promise<number | undefined> => (await m.snapshot()).services.find((s) => s.host === host)?.id;
      const id = await idOf(fx.membership, 'h1@be');
      expect(Number.isInteger(id) && (id as number) > 0).toBe(true);
      await fx.clock.advance(10);
      await first.member.heartbeat();
      expect(await idOf(fx.membership, 'h1@be')).toBe(id);
      await first.member.leave();
      await join('h1@be');
      expect(await idOf(fx.membership, 'h1@be')).toBe(id);
      const after = await fx.restarted();
      expect(await idOf(after, 'h1@be')).toBe(id);
      expect(buildServiceViews(await after.snapshot())[0]?.id).toBe(id);
      await after.close();
      if (fx.membership.distributed) {
        const other = await fx.second();
        await join('h2@be', other);
        const ids = (await fx.membership.snapshot()).services.map((s) => s.id);
        expect(new Set(ids).size).toBe(2);
        await other.close();
      }
    });

    it('watch: an initial sync, then joins, heartbeats and leaves in order', async () => {
      const before = await join('h0@be');
      const watch = collect(fx.membership);
      await waitFor(() => watch.events.length >= 1, { what: 'initial sync' });
      expect(watch.events[0]).toMatchObject({ type: 'members-synced', reason: 'initial', members: [expect.objectContaining({ host: 'h0@be' })] });
      await before.member.leave();
      const a = await join('h0@be');
      await fx.clock.advance(10);
      await a.member.heartbeat();
      await a.member.leave();
      await waitFor(() => watch.events.length >= 5, { what: 'four more events' });
      watch.stop();
      expect(watch.events.slice(1).map((e) => e.type)).toEqual(['member-left', 'member-joined', 'member-heartbeat', 'member-left']);
      const [, left, joined, beat, left2] = watch.events as [MembershipEvent, ...Extract<MembershipEvent, { member: unknown }>[]];
      expect(left!.member.incarnation).toBe(before.member.owner.incarnation);
      expect(joined!.member).toMatchObject({ host: 'h0@be', incarnation: a.member.owner.incarnation, aliveRevision: a.member.owner.aliveRevision });
      expect(beat!.member.heartbeatAtMs).toBe(fx.clock.now());
      expect(left2!.member.incarnation).toBe(a.member.owner.incarnation);
      const revisions = watch.events.slice(1).map((e) => BigInt(e.revision));
      expect([...revisions].sort((x, y) => (x < y ? -1 : 1))).toEqual(revisions);
    });

    describe('incarnation records: who ran an incarnation, and how it ended', () => {
      const PROCESS = { pid: 4242, startTicks: '987654', bootId: 'boot-1', pidNamespace: 'pid:[1]', hostname: 'machine-1', addresses: ['10.0.0.7'] };
      const end = (incarnation: string, host: string, how: IncarnationEnd['how'] = 'exec'): IncarnationEnd => ({ incarnation, host, how, by: 'someone', atMs: fx.clock.now(), detail: 'test' });

      it('a join records the process beside the incarnation; the record outlives it', async () => {
        const session = await fx.openSession('h1@be');
        sessions.push(session);
        const member = await fx.membership.join({ identity: identity('h1@be'), binary: BINARY, version: '1', session, process: PROCESS });
        expect(await fx.membership.incarnation(member.owner.incarnation)).toEqual({
          record: { incarnation: member.owner.incarnation, host: 'h1@be', cluster: CLUSTER, process: PROCESS, joinedAtMs: fx.clock.now() },
          end: undefined,
          alive: true,
        });
        await member.leave();
        const after = await fx.membership.incarnation(member.owner.incarnation);
        expect(after.record?.process).toEqual(PROCESS);
        expect(after.alive).toBe(false);
        expect(after.end).toBeUndefined(); // a leave that was not clean records no end
      });

      it('a clean leave records the end (left) in the same write; any other end of an incarnation records none', async () => {
        const a = await join('h1@be');
        await a.member.leave({ clean: true });
        expect((await fx.membership.incarnation(a.member.owner.incarnation)).end).toMatchObject({ how: 'left', by: a.member.owner.incarnation });
        expect(await fx.fenceHolds(fx.membership.ended(a.member.owner.incarnation))).toBe(true);
        const b = await join('h1@be');
        b.session.markLost();
        await b.member.leave({ clean: true }); // too late: no longer joined, so not clean
        expect((await fx.membership.incarnation(b.member.owner.incarnation)).end).toBeUndefined();
        expect(await fx.fenceHolds(fx.membership.ended(b.member.owner.incarnation))).toBe(false);
      });

      it('records an end once, only for an incarnation that is not alive (unless it fences itself); the first end wins', async () => {
        const a = await join('h1@be');
        const inc = a.member.owner.incarnation;
        expect(await fx.membership.recordEnd(end(inc, 'h1@be'))).toEqual({ ok: false, reason: 'alive' });
        expect(await fx.fenceHolds(fx.membership.ended(inc))).toBe(false);
        await a.member.leave();
        const first = await fx.membership.recordEnd(end(inc, 'h1@be', 'exec'));
        expect(first).toMatchObject({ ok: true, created: true, end: { how: 'exec' } });
        expect(await fx.membership.recordEnd(end(inc, 'h1@be', 'manual'))).toMatchObject({ ok: true, created: false, end: { how: 'exec' } });
        expect(await fx.fenceHolds(fx.membership.ended(inc))).toBe(true);
        // A self fence may be recorded while the alive entry still stands (the process knows its runs settled).
        const b = await join('h1@be');
        expect(await fx.membership.recordEnd(end(b.member.owner.incarnation, 'h1@be', 'self'))).toMatchObject({ ok: true, created: true });
      });

      it('a recorder whose own fence fails writes nothing', async () => {
        const dead = await join('h1@be');
        await dead.member.leave();
        const recorder = await join('h1@be');
        const fence = recorder.member.fence();
        await recorder.member.leave();
        await expect(fx.membership.recordEnd(end(dead.member.owner.incarnation, 'h1@be'), fence)).rejects.toMatchObject({ code: 'FENCED' });
        expect((await fx.membership.incarnation(dead.member.owner.incarnation)).end).toBeUndefined();
      });

      it('waitEnded resolves once the end is recorded (and at once when it is); it honours its signal', async () => {
        const a = await join('h1@be');
        const inc = a.member.owner.incarnation;
        await a.member.leave();
        const waiting = fx.membership.waitEnded(inc, AbortSignal.timeout(20_000));
        await fx.membership.recordEnd(end(inc, 'h1@be', 'lock-delay'));
        expect(await waiting).toMatchObject({ incarnation: inc, how: 'lock-delay' });
        expect(await fx.membership.waitEnded(inc, AbortSignal.timeout(20_000))).toMatchObject({ how: 'lock-delay' });
        const b = await join('h1@be');
        const ctl = new AbortController();
        const never = fx.membership.waitEnded(b.member.owner.incarnation, ctl.signal);
        ctl.abort();
        await expect(never).rejects.toMatchObject({ code: 'ABORTED' });
      });

      it('lists every record and end, and forgets them on request', async () => {
        const a = await join('h1@be');
        await a.member.leave({ clean: true });
        const listed = (await fx.membership.incarnations()).find((v) => v.record?.incarnation === a.member.owner.incarnation);
        expect(listed).toMatchObject({ end: { how: 'left' }, alive: false });
        await fx.membership.forgetIncarnation(a.member.owner.incarnation);
        expect(await fx.membership.incarnation(a.member.owner.incarnation)).toEqual({ record: undefined, end: undefined, alive: false });
      });
    });

    describe('IncarnationSupervisor (session, membership and locks of one run)', () => {
      interface Supervised {
        readonly sup: IncarnationSupervisor;
        readonly events: IncarnationEvent[];
        /** Log messages the supervisor wrote, in order. */
        readonly logs: string[];
      }
      const supervise = (host: string, metrics = new MembershipMetrics(new Registry()), previousIncarnationWaitMs = 60_000): Supervised => {
        const logs: string[] = [];
        const sup = new IncarnationSupervisor({
          openSession: async () => {
            const s = await fx.openSession(host);
            sessions.push(s);
            return s;
          },
          lockServiceFor: (session) => new LocalLockService({ incarnation: session.incarnation }),
          membership: fx.membership,
          join: { identity: identity(host), binary: BINARY, version: '0.1.0' },
          clock: fx.clock,
          logger: recordingLogger(logs),
          metrics,
          reportIntervalMs: 1_000,
          previousIncarnationWaitMs,
          retry: Backoff.constant(100),
        });
        const events: IncarnationEvent[] = [];
        sup.subscribe((e) => events.push(e));
        return { sup, events, logs };
      };
      const kinds = (events: readonly IncarnationEvent[]): string[] => events.map((e) => `${e.type}:${e.reason}`);

      it('heartbeats every report interval and counts renewals', async () => {
        const registry = new Registry();
        const { sup } = supervise('h1@be', new MembershipMetrics(registry));
        await sup.start();
        const renewals = async (): Promise<number> => Number(/hearth_membership_lease_renewals_total\{result="ok"\} (\d+)/.exec(await registry.metrics())?.[1]);
        await fx.clock.advance(1_000);
        await waitFor(async () => (await renewals()) === 1, { what: 'first heartbeat' });
        expect((await fx.membership.snapshot()).alive[0]?.heartbeatAtMs).toBe(fx.clock.now());
        await fx.clock.advance(1_000);
        await waitFor(async () => (await renewals()) === 2, { what: 'second heartbeat' });
        expect((await fx.membership.snapshot()).alive[0]?.heartbeatAtMs).toBe(fx.clock.now());
        const text = await registry.metrics();
        expect(text).toMatch(/hearth_membership_lease_renewals_total\{result="ok"\} 2/);
        expect(text).toContain(`hearth_membership_lease_last_renewal_timestamp_seconds ${fx.clock.now() / 1000}`);
        await sup.close();
      });

      it('one incarnation is a session, the member joined on it and the locks on it', async () => {
        const { sup } = supervise('h1@be');
        const inc = await sup.start();
        expect(sup.current()).toBe(inc);
        expect(inc.member.owner.incarnation).toBe(inc.session.incarnation);
        const held = await inc.locks.tryAcquire('x');
        if (!held.ok) throw new Error('the lock should be free');
        await held.handle.release();
        await sup.close();
      });

      it('rejoins as a new incarnation on a new session after the session is lost, and tells subscribers', async () => {
        const { sup, events } = supervise('h1@be');
        const first = await sup.start();
        expect(sup.joined).toBe(true);
        (first.session as TestSession).markLost();
        await waitFor(() => events.length >= 3, { what: 'ended and restarted' });
        expect(kinds(events)).toEqual(['started:start', 'ended:session-lost', 'started:session-lost']);
        const restarted = events[2] as Extract<IncarnationEvent, { type: 'started' }>;
        expect(restarted.previous).toEqual(first.member.owner);
        expect(restarted.incarnation.member.owner.incarnation).not.toBe(first.member.owner.incarnation);
        expect(restarted.incarnation.session).not.toBe(first.session);
        expect(sup.current()).toBe(restarted.incarnation);
        expect(first.session.state).toBe('closed'); // a lost session is revoked, not left to expire
        const snap = await fx.membership.snapshot();
        expect(snap.alive.map((a) => a.incarnation)).toEqual([restarted.incarnation.member.owner.incarnation]);
        expect(await fx.fenceHolds(fx.membership.ownerGone(first.member.owner))).toBe(true);
        await sup.close();
        expect(events.at(-1)).toMatchObject({ type: 'ended', reason: 'left', owner: restarted.incarnation.member.owner });
      });

      it('once retired (shutdown began) it keeps the incarnation, but one that ends is not followed by another', async () => {
        const { sup, events } = supervise('h1@be');
        const first = await sup.start();
        sup.retire();
        expect(sup.joined).toBe(true);
        (first.session as TestSession).markLost();
        await waitFor(() => events.length >= 2, { what: 'the incarnation to end' });
        // close() waits for the supervisor's loop: had it started another incarnation, the
        // events would show it, and close() would leave it.
        await sup.close();
        expect(kinds(events)).toEqual(['started:start', 'ended:session-lost']);
        expect(sup.joined).toBe(false);
        expect((await fx.membership.snapshot()).alive).toEqual([]);
      });

      it('close() releases the locks, leaves (the member is down at once) and revokes the session; idempotent', async () => {
        const { sup, events } = supervise('h1@be');
        const inc = await sup.start();
        const held = await inc.locks.tryAcquire('x');
        if (!held.ok) throw new Error('the lock should be free');
        expect(held.handle.state).toBe('held');
        await sup.close();
        await sup.close();
        expect(held.handle.state).not.toBe('held');
        expect(sup.joined).toBe(false);
        expect((await fx.membership.snapshot()).alive).toEqual([]);
        expect(inc.session.state).toBe('closed');
        expect(kinds(events)).toEqual(['started:start', 'ended:left']);
      });

      it('an evicted incarnation ends its session and rejoins on a new one', async () => {
        const { sup, events } = supervise('h1@be');
        const first = await sup.start();
        // Another incarnation's leave-and-rejoin cannot happen while we live; simulate the
        // operator (or a bug) removing our alive entry through the adapter's own leave.
        await first.member.leave();
        await fx.clock.advance(1_000);
        await waitFor(() => events.length >= 3, { what: 'evicted and restarted' });
        expect(kinds(events)).toEqual(['started:start', 'ended:evicted', 'started:evicted']);
        expect(first.session.state).toBe('closed');
        const now = sup.current();
        expect(now?.session).not.toBe(first.session);
        expect(now?.member.owner.incarnation).toBe(now?.session.incarnation);
        await sup.close();
      });

      it('waits for an earlier incarnation of its host to go before joining', async () => {
        const old = await join('h1@be');
        const { sup, logs } = supervise('h1@be');
        let joined = false;
        const started = sup.start().then((inc) => {
          joined = true;
          return inc;
        });
        await waitFor(() => logs.includes(WAITING_FOR_EARLIER), { what: 'the supervisor to wait for the earlier incarnation' });
        expect(joined).toBe(false);
        await old.member.leave();
        const inc = await started;
        expect(inc.member.owner.incarnation).not.toBe(old.member.owner.incarnation);
        await sup.close();
      });

      it('gives up with ALREADY_ALIVE when the earlier incarnation stays, and revokes the session it opened', async () => {
        const old = await join('h1@be');
        const { sup, logs } = supervise('h1@be', new MembershipMetrics(new Registry()), 5_000);
        const starting = sup.start().catch((e: unknown) => e);
        await waitFor(() => logs.includes(WAITING_FOR_EARLIER), { what: 'the supervisor to wait for the earlier incarnation' });
        await fx.clock.advance(5_000);
        const err = await starting;
        expect(err).toBeInstanceOf(CoordinatorError);
        expect(err).toMatchObject({ code: 'ALREADY_ALIVE', holder: old.session.incarnation });
        expect(sup.joined).toBe(false);
        expect(sessions.at(-1)?.state).toBe('closed');
        expect((await fx.membership.snapshot()).alive.map((a) => a.incarnation)).toEqual([old.session.incarnation]);
      });
    });

    it('the monitor keeps hearth_cluster_members current from the watch', async () => {
      const registry = new Registry();
      const monitor = new MembershipMonitor({
        membership: fx.membership,
        metrics: new MembershipMetrics(registry),
        clock: fx.clock,
        logger: silentLogger(),
        retry: Backoff.constant(100),
      });
      monitor.start();
      const gauge = async (): Promise<string> => (await registry.metrics()).split('\n').filter((l) => l.startsWith('hearth_cluster_members{')).join('\n');
      const a = await join('h1@be');
      await waitFor(async () => (await gauge()).includes(`hearth_cluster_members{cluster="${CLUSTER}",state="alive"} 1`), { what: 'alive 1' });
      expect(await gauge()).toContain(`hearth_cluster_members{cluster="${CLUSTER}",state="expected"} 1`);
      await a.member.leave();
      await waitFor(async () => (await gauge()).includes(`hearth_cluster_members{cluster="${CLUSTER}",state="alive"} 0`), { what: 'alive 0' });
      expect(await gauge()).toContain(`hearth_cluster_members{cluster="${CLUSTER}",state="expected"} 1`);
      await monitor.close();
    });
  });
}
