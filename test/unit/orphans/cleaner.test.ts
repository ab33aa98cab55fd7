import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError, FencedError } from '../../../src/errors.js';
import { allOf } from '../../../src/fence.js';
import { VOLUME_BINARY, type OwnerRef } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import type { Member } from '../../../src/membership/membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { AutoCleanup } from '../../../src/orphans/auto-cleanup.js';
import { OrphanCleaner } from '../../../src/orphans/cleaner.js';
import type { CreatingAction } from '../../../src/orphans/cleanup-actions.js';
import { OrphanDetector } from '../../../src/orphans/detector.js';
import type { FailoverLedger } from '../../../src/orphans/failover-ledger.js';
import { LocalFailoverLedger } from '../../../src/orphans/local-failover-ledger.js';
import { MAX_REMEMBERED_DEATHS, OrphanMetrics } from '../../../src/orphans/metrics.js';
import type { RerunOutcome, TakeoverClaim, TakeoverClaimer, TakeoverRunner } from '../../../src/orphans/takeover.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { OpRecord, ResourceRef } from '../../../src/state/records.js';
import { OP_KINDS, type OpKind } from '../../../src/state/state-machine.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { CLEANED_STATUS, ownBy, seedInFlight } from '../../support/orphan-fixtures.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER = 'c@be';
const HOST = 'h@be';
const T0 = Date.UTC(2024, 5, 1);

/** Stand-in for the worker's OpClaimer (same write: expect opId/owner/attempt, fence me + owner gone). */
function claimerOver(store: StateStore, membership: LocalMembership): TakeoverClaimer {
  return {
    async claimOp(op: OpRecord, me: Member): Promise<TakeoverClaim> {
      const owner = op.owner as OwnerRef;
      const ownerGone = membership.ownerGone(owner);
      try {
        const r = await store.updateOp(
          { type: op.type, id: op.id },
          { expect: { opId: op.opId, owner: owner.incarnation, attempt: op.attempt }, set: { owner: me.owner, attempt: op.attempt + 1 }, fence: allOf(me.fence(), ownerGone) },
        );
        return r.ok ? { ok: true, op: r.op } : { ok: false, reason: 'conflict', failed: r.failed };
      } catch (err) {
        if (err instanceof FencedError && me.fence().holds()) return { ok: false, reason: 'owner-alive' };
        if (err instanceof FencedError) return { ok: false, reason: 'fenced', error: err };
        throw err;
      }
    },
  };
}

/** Stand-in for the OperationRunner: the worker's one final write of a delete or create, no driver. */
function runnerOver(store: StateStore, me: () => Member, runs: OpRecord[]): TakeoverRunner {
  return {
    async run(op): Promise<RerunOutcome> {
      runs.push(op);
      const ref = { type: op.type, id: op.id };
      const expectOp = { opId: op.opId, owner: me().owner.incarnation };
      const fence = me().fence();
      if (op.kind === 'delete_volume' || op.kind === 'delete_snapshot') {
        const r = await store.remove(ref, { expect: { status: 'deleting' }, expectOp, by: 'worker', fence });
        return r.ok ? { result: 'success', status: 'deleted' } : { result: 'gone' };
      }
      const r = await store.transition(ref, { expect: { status: 'creating' }, expectOp, set: { status: 'available' }, op: 'remove', by: 'worker', fence });
      return r.ok ? { result: 'success', status: 'available' } : { result: 'gone' };
    },
  };
}

interface Fixture {
  dir: string;
  clock: ManualClock;
  store: StateStore;
  membership: LocalMembership;
  registry: Registry;
  metrics: OrphanMetrics;
  detector: OrphanDetector;
  runs: OpRecord[];
  member?: Member;
  ledger: FailoverLedger;
  /** `metrics` and `ledger`: another process's (its own instruments; the cluster's ledger). */
  cleaner(options?: { creatingAction?: CreatingAction; store?: StateStore; metrics?: OrphanMetrics; ledger?: FailoverLedger }): OrphanCleaner;
  join(): Promise<Member>;
}

async function fixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-orphans-'));
  const clock = new ManualClock(T0);
  const store = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock, metrics: createStateMetrics(new Registry()) });
  const membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), clock);
  const registry = new Registry();
  const metrics = new OrphanMetrics(registry);
  const detector = new OrphanDetector({ membership, store, clock, logger: silentLogger(), metrics, sweepIntervalMs: 3_600_000 });
  const runs: OpRecord[] = [];
  const ledger = new LocalFailoverLedger();
  const fx: Fixture = {
    ledger,
    dir,
    clock,
    store,
    membership,
    registry,
    metrics,
    detector,
    runs,
    cleaner: (options = {}) => {
      const s = options.store ?? store;
      return new OrphanCleaner({
        store: s,
        membership,
        member: () => fx.member,
        claimer: claimerOver(s, membership),
        runner: runnerOver(s, () => fx.member as Member, runs),
        clock,
        logger: silentLogger(),
        metrics: options.metrics ?? metrics,
        ledger: options.ledger ?? ledger,
        creatingAction: options.creatingAction ?? 'error',
        deathOf: (inc) => detector.deathOf(inc),
      });
    },
    join: async () =>
      (fx.member = await membership.join({ identity: { cluster: CLUSTER, host: HOST, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session: TestSession.local(HOST) })),
  };
  return fx;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const hit = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val) && (!('metricName' in v) || v.metricName === name || v.metricName === `${name}_count`));
  return hit?.value ?? 0;
}

/** Seeds one in-flight op of each kind, owned by an earlier incarnation of this host. */
async function seedAll(fx: Fixture, owner: OwnerRef): Promise<Map<OpKind, ResourceRef>> {
  const refs = new Map<OpKind, ResourceRef>();
  for (const { kind } of OP_KINDS) {
    const ref = await seedInFlight(fx.store, CLUSTER, kind);
    await ownBy(fx.store, ref, owner);
    refs.set(kind, ref);
  }
  return refs;
}

describe('orphan detection and cleanup on a single node (SQLite, local membership)', () => {
  let fx: Fixture;
  beforeEach(async () => {
    fx = await fixture();
  });
  afterEach(async () => {
    await fx.detector.close();
    await fx.membership.close();
    await fx.store.close();
    await rm(fx.dir, { recursive: true, force: true });
  });

  it("ops of this host's earlier incarnation are orphans until the start-up cleanup runs every kind's action", async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    const refs = await seedAll(fx, earlier);
    fx.detector.start();
    const before = await fx.detector.sweep();
    expect(before).toHaveLength(OP_KINDS.length);
    expect(before.every((o) => o.reason === 'owner-gone')).toBe(true);
    expect(await metricValue(fx.registry, 'hearth_orphaned_operations', { cluster: CLUSTER })).toBe(OP_KINDS.length);

    const me = await fx.join();
    const stillOrphans = await fx.detector.sweep();
    expect(stillOrphans.map((o) => o.reason)).toEqual(OP_KINDS.map(() => 'owner-replaced'));

    const report = await fx.cleaner().clean({ ownerHost: HOST, cluster: CLUSTER }, 'restart');
    expect(report).toEqual({ found: OP_KINDS.length, cleaned: OP_KINDS.length, skipped: 0, awaitingFence: 0, errors: 0 });
    for (const [kind, ref] of refs) {
      const record = await fx.store.get(ref);
      expect(record?.status ?? 'deleted', kind).toBe(CLEANED_STATUS[kind]);
      if (record && kind !== 'delete_volume' && kind !== 'delete_snapshot') {
        expect(record.host, kind).toBe(me.owner.host);
        expect(record.updated_by, kind).toBe(me.owner.incarnation);
      }
    }
    const detach = await fx.store.get(refs.get('detach_volume') as { type: 'volume'; id: string });
    expect(detach?.attach_status).toBe('attached');
    // An orphaned copy ends in error and releases its source's hold: the source can be deleted again.
    for (const kind of ['clone_volume', 'create_volume_from_snapshot'] as const) {
      const copy = (await fx.store.get(refs.get(kind) as { type: 'volume'; id: string }))!;
      expect(copy, kind).toMatchObject({ status: 'error', source_held: false });
      const source = copy.source_volid ? { type: 'volume' as const, id: copy.source_volid } : { type: 'snapshot' as const, id: copy.snapshot_id! };
      const held = await fx.store.transition(source as { type: 'volume'; id: string }, { expect: { holds: 0 }, set: {}, by: 'api' });
      expect(held.ok, kind).toBe(true);
    }
    const attach = await fx.store.get(refs.get('attach_volume') as { type: 'volume'; id: string });
    expect(attach?.attach_status).toBe('detached');
    // The deletes were re-run through the runner, with the op as claimed (owned by me now).
    expect(fx.runs.map((op) => [op.kind, op.owner?.incarnation, op.attempt]).sort()).toEqual([
      ['delete_snapshot', me.owner.incarnation, 2],
      ['delete_volume', me.owner.incarnation, 2],
    ]);
    expect(await fx.store.listOps()).toEqual([]);
    expect(await fx.detector.sweep()).toEqual([]);
    expect(await metricValue(fx.registry, 'hearth_orphaned_operations', { cluster: CLUSTER })).toBe(0);
    // One dead incarnation taken over: one failover, however many of its ops.
    expect(await metricValue(fx.registry, 'hearth_failovers_total', { cluster: CLUSTER, reason: 'restart' })).toBe(1);
    expect(await metricValue(fx.registry, 'hearth_orphan_cleanups_total', { result: 'cleaned' })).toBe(OP_KINDS.length);
  });

  it('orphans.creatingAction resume re-runs creates instead of marking them error', async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    const vol = await seedInFlight(fx.store, CLUSTER, 'create_volume');
    const snap = await seedInFlight(fx.store, CLUSTER, 'create_snapshot');
    await ownBy(fx.store, vol, earlier);
    await ownBy(fx.store, snap, earlier);
    await fx.join();
    const report = await fx.cleaner({ creatingAction: 'resume' }).clean({ ownerHost: HOST }, 'restart');
    expect(report.cleaned).toBe(2);
    expect(fx.runs.map((op) => op.kind).sort()).toEqual(['create_snapshot', 'create_volume']);
    expect((await fx.store.get(vol))?.status).toBe('available');
    expect((await fx.store.get(snap))?.status).toBe('available');
  });

  it('two cleaners racing over the same orphans: each orphan is claimed and cleaned exactly once', async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    await seedAll(fx, earlier);
    await fx.join();
    const a = fx.cleaner();
    const b = fx.cleaner();
    const listed = await a.find({ ownerHost: HOST });
    const [ra, rb] = await Promise.all([a.cleanOrphans(listed, 'cleanup'), b.cleanOrphans(listed, 'cleanup')]);
    expect(ra.cleaned + rb.cleaned).toBe(OP_KINDS.length);
    expect(ra.skipped + rb.skipped).toBe(OP_KINDS.length);
    expect(ra.errors + rb.errors).toBe(0);
    expect(fx.runs).toHaveLength(2);
    // Both cleaners live in one process here (one registry): the death counts once.
    expect(await metricValue(fx.registry, 'hearth_failovers_total', { cluster: CLUSTER, reason: 'cleanup' })).toBe(1);
    expect(await metricValue(fx.registry, 'hearth_orphan_cleanups_total', { result: 'skipped' })).toBe(OP_KINDS.length);
  });

  it('hearth_failovers_total counts each dead incarnation once, at its first op taken over, across cleanups', async () => {
    const one: OwnerRef = { host: HOST, incarnation: `${HOST}:one`, aliveRevision: '0' };
    const two: OwnerRef = { host: 'other@be', incarnation: 'other@be:two', aliveRevision: '0' };
    const a = await ownBy(fx.store, await seedInFlight(fx.store, CLUSTER, 'extend_volume'), one);
    const b = await ownBy(fx.store, await seedInFlight(fx.store, CLUSTER, 'create_volume'), one);
    const c = await ownBy(fx.store, await seedInFlight(fx.store, CLUSTER, 'create_snapshot'), two);
    await fx.join();
    // First cleanup: one op of `one` only; then the rest (another op of `one`, and `two`'s).
    expect(await fx.cleaner().clean({ resourceId: a.id }, 'cleanup')).toMatchObject({ cleaned: 1 });
    expect(await metricValue(fx.registry, 'hearth_failovers_total', { cluster: CLUSTER, reason: 'cleanup' })).toBe(1);
    expect(await fx.cleaner().clean({}, 'cleanup')).toMatchObject({ found: 2, cleaned: 2 });
    expect(await metricValue(fx.registry, 'hearth_failovers_total', { cluster: CLUSTER, reason: 'cleanup' })).toBe(2);
    expect(await fx.store.getOp({ type: 'volume', id: b.id })).toBeUndefined();
    expect(await fx.store.getOp({ type: 'snapshot', id: c.id })).toBeUndefined();
  });

  it('two processes (own instruments, one ledger) splitting one death\'s orphans count it once in total', async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    await seedAll(fx, earlier);
    await fx.join();
    const otherRegistry = new Registry();
    const other = fx.cleaner({ metrics: new OrphanMetrics(otherRegistry) });
    const listed = await fx.cleaner().find({ ownerHost: HOST });
    const half = Math.floor(listed.length / 2);
    await Promise.all([fx.cleaner().cleanOrphans(listed.slice(0, half), 'auto_cleanup'), other.cleanOrphans(listed.slice(half), 'auto_cleanup')]);
    const counts = [await metricValue(fx.registry, 'hearth_failovers_total', { reason: 'auto_cleanup' }), await metricValue(otherRegistry, 'hearth_failovers_total', { reason: 'auto_cleanup' })];
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
    expect(await metricValue(fx.registry, 'hearth_orphan_cleanups_total', { result: 'cleaned' }) + (await metricValue(otherRegistry, 'hearth_orphan_cleanups_total', { result: 'cleaned' }))).toBe(OP_KINDS.length);
  });

  it('counts the failover here when the ledger cannot be reached (never zero times)', async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    await ownBy(fx.store, await seedInFlight(fx.store, CLUSTER, 'extend_volume'), earlier);
    await fx.join();
    const down: FailoverLedger = { first: () => Promise.reject(new BackendUnavailableError('etcd', 'etcd is unreachable')) };
    expect(await fx.cleaner({ ledger: down }).clean({}, 'cleanup')).toMatchObject({ cleaned: 1, errors: 0 });
    expect(await metricValue(fx.registry, 'hearth_failovers_total', { cluster: CLUSTER, reason: 'cleanup' })).toBe(1);
  });

  it('OrphanMetrics.firstInProcess: once per incarnation; memory bounded by MAX_REMEMBERED_DEATHS; LocalFailoverLedger: first once', async () => {
    const metrics = new OrphanMetrics(new Registry());
    expect(metrics.firstInProcess('h:1')).toBe(true);
    expect(metrics.firstInProcess('h:1')).toBe(false);
    for (let i = 0; i < MAX_REMEMBERED_DEATHS; i++) metrics.firstInProcess(`x:${i}`);
    // `h:1` was the oldest and is forgotten now; the newest is still remembered.
    expect(metrics.firstInProcess(`x:${MAX_REMEMBERED_DEATHS - 1}`)).toBe(false);
    expect(metrics.firstInProcess('h:1')).toBe(true);
    const ledger: FailoverLedger = new LocalFailoverLedger();
    const by: OwnerRef = { host: HOST, incarnation: `${HOST}:me`, aliveRevision: '0' };
    expect(await Promise.all([ledger.first('d:1', by), ledger.first('d:1', by), ledger.first('d:2', by)])).toEqual([true, false, true]);
  });

  it('never takes work whose owner is alive: the claim proves the owner dead, or skips', async () => {
    const me = await fx.join();
    const ref = await seedInFlight(fx.store, CLUSTER, 'extend_volume');
    const op = await ownBy(fx.store, ref, me.owner);
    // Pretend a stale listing called it an orphan.
    const forged = [{ op, owner: me.owner, reason: 'owner-gone' as const, since: T0, ageMs: 0 }];
    expect(await fx.cleaner().cleanOrphans(forged, 'cleanup')).toEqual({ found: 1, cleaned: 0, skipped: 1, awaitingFence: 0, errors: 0 });
    expect((await fx.store.get(ref))?.status).toBe('extending');
    expect((await fx.store.getOp(ref))?.owner).toEqual(me.owner);
    expect(await fx.cleaner().find({})).toEqual([]);
  });

  it('an op changed since it was listed is skipped (the claim compares attempt and owner)', async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    const ref = await seedInFlight(fx.store, CLUSTER, 'create_volume');
    await ownBy(fx.store, ref, earlier);
    await fx.join();
    const listed = await fx.cleaner().find({});
    // Someone else took it over meanwhile (another cleaner; here: a different dead owner).
    await ownBy(fx.store, ref, { host: 'other@be', incarnation: 'other@be:1', aliveRevision: '0' });
    expect(await fx.cleaner().cleanOrphans(listed, 'cleanup')).toMatchObject({ cleaned: 0, skipped: 1 });
    expect((await fx.store.get(ref))?.status).toBe('creating');
  });

  it("measures the failover from the owner's death (seen leaving) to the takeover claim", async () => {
    fx.detector.start();
    const first = await fx.join();
    const ref = await seedInFlight(fx.store, CLUSTER, 'extend_volume');
    await ownBy(fx.store, ref, first.owner);
    await first.leave();
    await waitFor(() => fx.detector.deathOf(first.owner.incarnation) === T0, { what: 'the death to be seen' });
    await fx.clock.advance(2_500);
    await fx.join();
    expect(await fx.cleaner().clean({}, 'cleanup')).toMatchObject({ cleaned: 1 });
    const histogram = await fx.registry.getSingleMetric('hearth_failover_duration_seconds')?.get();
    expect(histogram?.values.find((v) => (v as { metricName?: string }).metricName === 'hearth_failover_duration_seconds_sum')?.value).toBe(2.5);
    expect(histogram?.values.find((v) => (v as { metricName?: string }).metricName === 'hearth_failover_duration_seconds_count')?.value).toBe(1);
    const orphanSince = (await fx.detector.sweep()).length;
    expect(orphanSince).toBe(0);
  });

  it('retries a cleanup action that failed for a passing reason until it lands', async () => {
    const earlier: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    const ref = await seedInFlight(fx.store, CLUSTER, 'extend_volume');
    await ownBy(fx.store, ref, earlier);
    await fx.join();
    let failures = 2;
    const real = fx.store.transition.bind(fx.store);
    const flaky = Object.create(fx.store) as StateStore;
    flaky.transition = (async (...args: Parameters<StateStore['transition']>) => {
      if (failures-- > 0) throw new BackendUnavailableError('sqlite', 'disk hiccup');
      return real(...args);
    }) as StateStore['transition'];
    const cleaner = fx.cleaner({ store: flaky });
    expect(await cleaner.clean({}, 'cleanup')).toMatchObject({ cleaned: 0, errors: 1 });
    expect((await fx.store.getOp(ref))?.owner?.incarnation).toBe(fx.member?.owner.incarnation);
    await fx.clock.advance(1_000);
    await fx.clock.advance(2_000);
    await waitFor(async () => (await fx.store.get(ref))?.status === 'error_extending', { what: 'the retried cleanup' });
    expect(await fx.store.getOp(ref)).toBeUndefined();
    await cleaner.close();
  });

  it('a cleaner that is not a live member claims nothing', async () => {
    const ref = await seedInFlight(fx.store, CLUSTER, 'create_volume');
    await ownBy(fx.store, ref, { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' });
    expect(await fx.cleaner().clean({}, 'cleanup')).toEqual({ found: 1, cleaned: 0, skipped: 0, awaitingFence: 0, errors: 1 });
    expect((await fx.store.getOp(ref))?.owner?.incarnation).toBe(`${HOST}:earlier`);
  });

  it('the watch finds an orphan the moment its owner leaves (no backstop sweep), logs it with its ids and counts it', async () => {
    const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = [];
    const capture = (level: string) => (obj: unknown, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
    const logger = { child: () => logger, trace: capture('trace'), debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error'), fatal: capture('fatal'), isLevelEnabled: () => true };
    const detector = new OrphanDetector({ membership: fx.membership, store: fx.store, clock: fx.clock, logger, metrics: fx.metrics, sweepIntervalMs: 3_600_000 });
    const first = await fx.join();
    const ref = await seedInFlight(fx.store, CLUSTER, 'delete_volume');
    const op = await ownBy(fx.store, ref, first.owner);
    detector.start();
    expect(await detector.sweep()).toEqual([]);
    await fx.clock.advance(1_000);
    await first.leave();
    await waitFor(() => detector.current().length === 1, { what: 'the orphan', timeoutMs: 2_000 });
    const [orphan] = detector.current();
    expect(orphan).toMatchObject({ reason: 'owner-gone', since: T0 + 1_000, owner: first.owner });
    expect(await metricValue(fx.registry, 'hearth_orphaned_operations', { cluster: CLUSTER })).toBe(1);
    const found = lines.find((l) => l.msg === 'orphaned operation found');
    expect(found?.level).toBe('info');
    expect(found?.obj).toMatchObject({ type: 'volume', id: ref.id, opId: op.opId, kind: 'delete_volume', status: 'deleting', ownerHost: HOST, ownerIncarnation: first.owner.incarnation });
    await fx.join();
    await fx.cleaner().clean({}, 'cleanup');
    await detector.sweep();
    expect(lines.find((l) => l.msg?.startsWith('orphaned operation gone'))?.obj).toMatchObject({ id: ref.id, opId: op.opId });
    expect(await metricValue(fx.registry, 'hearth_orphaned_operations', { cluster: CLUSTER })).toBe(0);
    await detector.close();
    await detector.close();
  });

  it('an orphan whose death this process did not see counts from the sweep that first found it, not from its last change', async () => {
    const ref = await seedInFlight(fx.store, CLUSTER, 'extend_volume');
    await ownBy(fx.store, ref, { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' });
    await fx.clock.advance(60_000);
    const [first] = await fx.detector.sweep();
    expect(first).toMatchObject({ since: T0 + 60_000, ageMs: 0 });
    await fx.clock.advance(5_000);
    const [again] = await fx.detector.sweep();
    expect(again).toMatchObject({ since: T0 + 60_000, ageMs: 5_000 });
  });

  it('automatic cleanup takes orphans of its cluster once they are graceMs old, not before', async () => {
    const me = await fx.join();
    const ref = await seedInFlight(fx.store, CLUSTER, 'create_volume');
    const foreign = await seedInFlight(fx.store, 'other@be', 'create_volume');
    const dead: OwnerRef = { host: HOST, incarnation: `${HOST}:earlier`, aliveRevision: '0' };
    await ownBy(fx.store, ref, dead);
    await ownBy(fx.store, foreign, dead);
    const cleaner = fx.cleaner();
    const auto = new AutoCleanup({
      detector: fx.detector,
      clean: async (orphans, signal) => {
        const report = await cleaner.cleanOrphans(orphans, 'auto_cleanup', signal);
        await fx.detector.sweep();
        return report;
      },
      live: () => me.joined,
      cluster: CLUSTER,
      graceMs: 10_000,
      retryDelayMs: 5_000,
      clock: fx.clock,
      logger: silentLogger(),
    });
    fx.detector.start();
    auto.start();
    await waitFor(() => fx.detector.current().length === 2, { what: 'two orphans' });
    await fx.clock.advance(9_000);
    expect((await fx.store.get(ref))?.status).toBe('creating');
    await fx.clock.advance(1_000);
    await waitFor(async () => (await fx.store.get(ref))?.status === 'error', { what: 'the automatic cleanup' });
    expect(await metricValue(fx.registry, 'hearth_failovers_total', { cluster: CLUSTER, reason: 'auto_cleanup' })).toBe(1);
    // Another cluster's orphan is not this member's to clean.
    expect((await fx.store.get(foreign))?.status).toBe('creating');
    await auto.close();
  });
});
