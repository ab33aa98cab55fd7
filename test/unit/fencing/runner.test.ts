// The fence runner over the single-node adapters (local membership in a real file, the memory
// fence queue), with methods a test scripts: what it fences, how it records it, and when it waits.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalFenceQueue } from '../../../src/fencing/local-fence-queue.js';
import type { FenceMethod, FenceOutcome, FenceTarget } from '../../../src/fencing/method.js';
import { FenceMetrics } from '../../../src/fencing/metrics.js';
import { planFence } from '../../../src/fencing/plan.js';
import { FenceRunner } from '../../../src/fencing/runner.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import type { Incarnation, Incarnations } from '../../../src/incarnation/incarnation.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { Backoff } from '../../../src/lifecycle/retry.js';
import { LocalLockService } from '../../../src/locks/local-lock-service.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import type { Member } from '../../../src/membership/membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { TestSession } from '../../support/test-session.js';
import { waitFor } from '../../support/wait.js';

const HOST = 'n1@be';
const CLUSTER = 'c1@be';
const PROCESS = { pid: 4242, startTicks: '1', bootId: 'b', pidNamespace: 'pid:[1]', hostname: 'm', addresses: [] };

/** A method that answers from a script and records whom it was asked to fence. */
class Scripted implements FenceMethod {
  readonly asked: FenceTarget[] = [];
  constructor(
    readonly name: FenceMethod['name'],
    private readonly answers: FenceOutcome[],
  ) {}
  async fence(target: FenceTarget): Promise<FenceOutcome> {
    this.asked.push(target);
    return this.answers.shift() ?? { fenced: false, reason: 'no more answers' };
  }
}

const runners: FenceRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
});

/** A constant wait that records how many consecutive failures each wait was asked for. */
class RecordingBackoff extends Backoff {
  readonly asked: number[] = [];
  constructor(private readonly waitMs: number) {
    super({ initialDelayMs: waitMs, maxDelayMs: waitMs, jitter: 'none' });
  }
  override delayMs(failures: number): number {
    this.asked.push(failures);
    return this.waitMs;
  }
}

async function setup(methods: { local?: Scripted; external: Scripted }, selfFenceGraceMs = 0, retryMs = 20, retry: Backoff = Backoff.constant(retryMs)) {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-fence-runner-'));
  const membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), systemClock);
  // A dead incarnation of this host, with its process on record; then the live one, the fencer.
  const dead = await membership.join({ identity: { cluster: CLUSTER, host: HOST, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session: TestSession.local(HOST), process: PROCESS });
  await dead.leave();
  const session = TestSession.local(HOST);
  const me: Member = await membership.join({ identity: { cluster: CLUSTER, host: HOST, zone: 'nova' }, binary: VOLUME_BINARY, version: '1', session });
  const inc: Incarnation = { member: me, session, locks: new LocalLockService() };
  const incarnations: Incarnations = { current: () => inc, subscribe: () => () => undefined };
  const registry = new Registry();
  const queue = new LocalFenceQueue(() => Date.now());
  const driverFenced: string[] = [];
  const runner = new FenceRunner({
    queue,
    membership,
    incarnations,
    methods,
    fenceDriver: async (incarnation) => void driverFenced.push(incarnation),
    clock: systemClock,
    logger: silentLogger(),
    metrics: new FenceMetrics(registry),
    selfFenceGraceMs,
    retry,
    sweepIntervalMs: 50,
  });
  runners.push(runner);
  runner.start();
  const metric = async (labels: string): Promise<number> => Number(new RegExp(`hearth_fences_total\\{${labels}\\} (\\d+)`).exec(await registry.metrics())?.[1]);
  return { membership, queue, runner, dead, me, driverFenced, metric, deadRef: { incarnation: dead.owner.incarnation, host: HOST, cluster: CLUSTER } };
}

describe('FenceRunner', () => {
  it('fences a dead incarnation with the configured method: the driver first, then the end on record; the operation goes', async () => {
    const external = new Scripted('exec', [{ fenced: true, detail: 'command exited 0' }]);
    const s = await setup({ external });
    await s.runner.need(s.deadRef, true);
    const end = await s.membership.waitEnded(s.dead.owner.incarnation, AbortSignal.timeout(10_000));
    expect(end).toMatchObject({ how: 'exec', by: s.me.owner.incarnation, detail: 'command exited 0' });
    expect(external.asked[0]).toMatchObject({ incarnation: s.dead.owner.incarnation, host: HOST, cluster: CLUSTER, process: PROCESS });
    expect(s.driverFenced).toEqual([s.dead.owner.incarnation]);
    await waitFor(async () => (await s.queue.list()).length === 0, { what: 'the fence operation to go' });
    expect(await s.metric('method="exec",result="fenced"')).toBe(1);
  });

  it('keeps trying a method that fails, recording why; the work waits meanwhile', async () => {
    const external = new Scripted('exec', [
      { fenced: false, reason: 'exited 3' },
      { fenced: false, reason: 'exited 3' },
      { fenced: true, detail: 'command exited 0' },
    ]);
    const s = await setup({ external }, 0, 500);
    await s.runner.need(s.deadRef, true);
    await waitFor(async () => (await s.queue.get(s.dead.owner.incarnation))?.lastError === 'exec: exited 3', { intervalMs: 10, what: 'the failure on record' });
    expect((await s.membership.incarnation(s.dead.owner.incarnation)).end).toBeUndefined();
    expect(await s.membership.waitEnded(s.dead.owner.incarnation, AbortSignal.timeout(10_000))).toMatchObject({ how: 'exec' });
    expect(external.asked).toHaveLength(3);
    expect(await s.metric('method="exec",result="failed"')).toBe(2);
  });

  it('a fence on its way (a lock-delay not over) waits as told and counts no failure', async () => {
    const external = new Scripted('lock-delay', [
      { fenced: false, reason: 'lock-delay: 80 ms to go', retryAfterMs: 80, pending: true },
      { fenced: true, detail: 'lock-delay passed' },
    ]);
    const s = await setup({ external }, 0, 60_000);
    await s.runner.need(s.deadRef, true);
    await waitFor(async () => (await s.queue.get(s.dead.owner.incarnation))?.lastError === 'lock-delay: lock-delay: 80 ms to go', { intervalMs: 5, what: 'the wait on record' });
    expect((await s.queue.get(s.dead.owner.incarnation))?.failures).toBe(0);
    // Retried after the 80 ms it asked for, not after the (60 s) failure back-off.
    expect(await s.membership.waitEnded(s.dead.owner.incarnation, AbortSignal.timeout(10_000))).toMatchObject({ how: 'lock-delay' });
    expect(await s.metric('method="lock-delay",result="failed"')).toBe(0);
    expect(await s.metric('method="lock-delay",result="fenced"')).toBe(1);
  });

  it('backs off further with every failure of a fence it keeps (it does not claim it again)', async () => {
    const external = new Scripted('exec', [
      { fenced: false, reason: 'exited 3' },
      { fenced: false, reason: 'exited 3' },
      { fenced: false, reason: 'exited 3' },
      { fenced: true, detail: 'command exited 0' },
    ]);
    const retry = new RecordingBackoff(20);
    const s = await setup({ external }, 0, 20, retry);
    await s.runner.need(s.deadRef, true);
    expect(await s.membership.waitEnded(s.dead.owner.incarnation, AbortSignal.timeout(10_000))).toMatchObject({ how: 'exec' });
    expect(retry.asked).toEqual([1, 2, 3]);
  });

  it('a process gone from this machine is fenced by the local check alone', async () => {
    const local = new Scripted('process-gone', [{ fenced: true, detail: 'process 4242 is gone' }]);
    const external = new Scripted('exec', []);
    const s = await setup({ local, external });
    await s.runner.need(s.deadRef, true);
    expect(await s.membership.waitEnded(s.dead.owner.incarnation, AbortSignal.timeout(10_000))).toMatchObject({ how: 'process-gone' });
    expect(external.asked).toHaveLength(0);
  });

  it('asks for nothing for an incarnation that is alive or already ended', async () => {
    const external = new Scripted('exec', [{ fenced: true, detail: 'x' }]);
    const s = await setup({ external });
    await s.runner.need({ incarnation: s.me.owner.incarnation, host: HOST, cluster: CLUSTER }, true);
    await s.membership.recordEnd({ incarnation: s.dead.owner.incarnation, host: HOST, how: 'manual', by: 'operator', atMs: Date.now(), detail: 'confirmed' });
    await s.runner.need(s.deadRef, true);
    expect(await s.queue.list()).toEqual([]);
    expect(external.asked).toHaveLength(0);
  });
});

describe('planFence', () => {
  const op = { incarnation: 'h@be:1', host: 'h@be', cluster: 'c@be', diedAtMs: 1_000, observedLive: false, requestedAtMs: 1_000, owner: null, attempt: 1, failures: 0, lastError: null, nextAttemptAtMs: 0, revision: '1' };
  const view = { record: undefined, end: undefined, alive: false };

  it('drops the operation once the end is on record, or when the incarnation is alive after all', () => {
    expect(planFence(op, { ...view, end: { incarnation: 'h@be:1', host: 'h@be', how: 'left', by: 'h@be:1', atMs: 1, detail: '' } }, 2_000, 0)).toEqual({ type: 'done', why: 'ended' });
    expect(planFence(op, { ...view, alive: true }, 2_000, 0)).toEqual({ type: 'done', why: 'alive' });
  });

  it('a death not seen live waits out the self-fence grace; one seen live is fenced at once', () => {
    expect(planFence(op, view, 2_000, 5_000)).toMatchObject({ type: 'wait', waitMs: 4_000 });
    expect(planFence(op, view, 6_000, 5_000)).toEqual({ type: 'fence' });
    expect(planFence({ ...op, observedLive: true }, view, 2_000, 5_000)).toEqual({ type: 'fence' });
  });

  it('never fences an earlier incarnation of the planning process itself, seen live or not', () => {
    const self = { ...PROCESS, pid: 77 };
    const mine = { ...view, record: { incarnation: 'h@be:1', host: 'h@be', cluster: 'c@be', process: self, joinedAtMs: 0 } };
    expect(planFence({ ...op, observedLive: true }, mine, 60_000, 5_000, self)).toMatchObject({ type: 'wait', reason: expect.stringContaining('this very process') as unknown });
    // Another process (here: the same pid, a later start) is fenced as usual.
    expect(planFence({ ...op, observedLive: true }, mine, 60_000, 5_000, { ...self, startTicks: '2' })).toEqual({ type: 'fence' });
  });
});
