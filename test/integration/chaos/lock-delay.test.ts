// The lock-delay variant of the fault suite's zombie, with `fencing.method none`: a worker frozen
// (SIGSTOP) for 2 × TTL + 3 s while its driver call on volume V is in flight, V's delete taken
// over meanwhile by automatic cleanup on the other worker. The fault suite's own checker
// (test/chaos: the journal's overlap row and etcd history's fence-order row) judges the run:
//  - a lock-delay longer than the freeze: the takeover waits (for the delay, or for the frozen
//    process to wake and end its earlier incarnation itself): no overlap;
//  - a lock-delay of one TTL, shorter than the freeze: the takeover waits only for the delay,
//    and the checker finds the overlap with the frozen call — it is the delay that prevents it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DeathFaults, fenceEvents, fenceOrderRow } from '../../chaos/fence-invariants.js';
import { decodeHistory, readHistory } from '../../chaos/history.js';
import { formatTable, overlapRow } from '../../chaos/invariants.js';
import { useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

const LEASE_TTL_MS = 3_000;
const FREEZE_MS = 2 * LEASE_TTL_MS + 3_000;
const LATENCY_MS = 4_000;
const ZOMBIE: DeathFaults = { kills: 0, zombies: 1, refusedFences: 0 };

const procs: HearthProcess[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const p of procs) p.resume();
  await Promise.all(procs.splice(0).map((p) => p.stop()));
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * Runs the scenario with `lockDelayMs` and returns the checker's rows, the frozen incarnation's
 * end as etcd records it, the freeze window and V's calls in the journal.
 */
async function frozenDelete(lockDelayMs: number) {
  const etcd = useEtcd();
  const amqp = await useAmqp();
  closers.push(() => etcd.close(), () => amqp.close());
  const fromRevision = Number((await etcd.client.get(`${etcd.prefix}/-`).exec()).header.revision) + 1;
  const journal = join(await mkdtemp(join(tmpdir(), 'hearth-lock-delay-')), 'journal.jsonl');
  const env = memberEnv(etcd, amqp, 'ld', journal, {
    HEARTH_DRIVER_FAKE_LATENCY_MS: String(LATENCY_MS),
    HEARTH_FENCING_METHOD: 'none',
    HEARTH_FENCING_LOCK_DELAY_MS: String(lockDelayMs),
    HEARTH_ORPHANS_AUTO_CLEANUP: 'true',
    HEARTH_ORPHANS_GRACE_MS: String(LEASE_TTL_MS),
    HEARTH_ORPHANS_SWEEP_INTERVAL_MS: '1000',
    // A frozen process keeps its broker connection until RabbitMQ misses two heartbeats.
    HEARTH_AMQP_HEARTBEAT_SECONDS: '1',
  });
  const api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
  procs.push(api);
  const workers = await Promise.all(['w1', 'w2'].map((h) => startWorker(env, h)));
  procs.push(...workers);
  const client = new ClusterClient(api);
  const vol = await client.createVolume();
  await client.waitStatus('volume', vol, 'available');
  await client.deleteVolume(vol);
  const call = await started(journal, 'deleteVolume', `volume:${vol}`);
  const zombie = workers[call.member === 'w1@be' ? 0 : 1] as HearthProcess;
  const from = Date.now();
  zombie.pause();
  await waitFor(async () => (await client.orphans()).some((o) => o.id === vol), { timeoutMs: LEASE_TTL_MS + 5_000, intervalMs: 100, what: 'the frozen worker’s delete to be an orphan' });
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, from + FREEZE_MS - Date.now())));
  zombie.resume();
  const to = Date.now();
  await client.waitStatus('volume', vol, 'deleted', 60_000);
  // The frozen call's end line, written once it woke.
  await waitFor(async () => (await readJournal(journal)).report.calls.some((c) => c.pid === call.pid && c.seq === call.seq && c.end !== undefined), { timeoutMs: 15_000, what: 'the frozen call to end' });
  const { report } = await readJournal(journal);
  const history = decodeHistory(etcd.prefix, await readHistory(etcd.client, etcd.prefix, 60_000, fromRevision));
  const rows = [overlapRow(report), fenceOrderRow(history, ZOMBIE)];
  // The frozen incarnation is the only one of the run that died.
  const end = fenceEvents(history).find((f) => f.host === call.member);
  console.log(`[lock-delay ${lockDelayMs} ms, freeze ${FREEZE_MS} ms] ${call.member} frozen ${to - from} ms; its end: ${JSON.stringify(end)}\n${formatTable(rows)}`);
  const calls = report.calls.filter((c) => c.resource === `volume:${vol}` && c.call === 'deleteVolume').sort((a, b) => a.start - b.start);
  return { rows: { overlap: rows[0], order: rows[1] }, end, to, calls, zombieMember: call.member, vol };
}

describe('fencing.method none: the lock-delay keeps a frozen worker’s in-flight call apart from the takeover', () => {
  it('with a lock-delay longer than the freeze, the takeover waits: no overlap, and the move came after the end on record', async () => {
    const r = await frozenDelete(FREEZE_MS + 11_000);
    expect(r.rows.overlap).toMatchObject({ result: 'PASS' });
    expect(r.rows.order).toMatchObject({ result: 'PASS' });
    // Ended only after it woke: by its own later incarnation (it saw its runs settle) or by the delay.
    expect(['self', 'lock-delay']).toContain(r.end?.how);
    expect(r.end?.atMs).toBeGreaterThanOrEqual(r.to);
    const [frozen, ...after] = r.calls;
    expect(frozen?.member).toBe(r.zombieMember);
    expect(after.length).toBeGreaterThanOrEqual(1);
    for (const c of after) expect(c.start).toBeGreaterThanOrEqual(frozen?.end ?? Infinity);
  }, 120_000);

  it('with a lock-delay of one TTL, shorter than the freeze, the checker finds the overlap: the takeover followed the delay, not the wake-up', async () => {
    const r = await frozenDelete(LEASE_TTL_MS);
    expect(r.rows.overlap).toMatchObject({ result: 'FAIL', detail: expect.stringContaining(`volume:${r.vol}: deleteVolume@${r.zombieMember} / deleteVolume@`) as unknown });
    // The move itself kept the rule — after the end on record — the end just came too early.
    expect(r.rows.order).toMatchObject({ result: 'PASS' });
    expect(r.end?.how).toBe('lock-delay');
    expect(r.end?.atMs).toBeLessThan(r.to);
    const [frozen, rerun] = r.calls;
    expect(rerun?.member).not.toBe(r.zombieMember);
    expect(rerun?.start).toBeLessThan(frozen?.end ?? 0);
  }, 120_000);
});
