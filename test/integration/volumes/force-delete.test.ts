import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../../src/drivers/fake-journal.js';
import { cinder, parseCinderDict, parseCinderTable } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal, started, startWorker } from '../../support/orphans-cluster.js';

/** No driver call of `oldOp` ended after the first driver call of `newOp` began. */
function oldEndedFirst(entries: readonly JournalEntry[], oldOp: string, newOp: string): boolean {
  const newStart = Math.min(...entries.filter((e) => e.opId === newOp && e.event === 'start').map((e) => e.t));
  const oldEnds = entries.filter((e) => e.opId === oldOp && e.event === 'end');
  return Number.isFinite(newStart) && oldEnds.length > 0 && oldEnds.every((e) => e.t <= newStart);
}

/**
 * python-cinderclient's `force-delete` and `snapshot-delete --force` on resources whose
 * operation hangs in a live worker's driver call (the fake driver, shared journal): an API-only
 * process replaces the operation and sends the abort notice over RabbitMQ; the owner's call
 * ends; the delete runs after it, never beside it.
 */
describe('force-delete of a resource whose operation hangs on a live member', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let dir: string;
  let journal: string;
  let api: HearthProcess;
  let client: ClusterClient;
  const workers: HearthProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    dir = await mkdtemp(join(tmpdir(), 'hearth-force-delete-'));
    journal = join(dir, 'journal.jsonl');
    const env = memberEnv(etcd, amqp, 'fd', journal, { HEARTH_DRIVER_FAKE_HANG: 'extendVolume,createSnapshot' });
    api = await startHearth({ name: 'fd-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    workers.push(await startWorker(env, 'w1'), await startWorker(env, 'w2'));
    client = new ClusterClient(api);
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), ...workers.map((w) => w.stop())]);
    await amqp?.close();
    await etcd?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a volume mid-extend: cinder force-delete aborts the owner\'s call, then deletes; hearth ops showed it owned by a live member', async () => {
    const created = parseCinderDict(await cinder(api.apiUrl, 'create', '--name', 'stuck', '1'));
    const id = created.id!;
    await client.waitStatus('volume', id, 'available');
    await cinder(api.apiUrl, 'extend', id, '2');
    const extending = await started(journal, 'extendVolume', `volume:${id}`);
    const ops = (await (await fetch(`${api.apiUrl}/hearth/v1/ops?kind=extend_volume`)).json()) as { ops: Record<string, unknown>[] };
    expect(ops.ops).toEqual([expect.objectContaining({ id, status: 'extending', owner_state: 'alive', owner_host: extending.member })]);

    await cinder(api.apiUrl, 'force-delete', id);
    await client.waitStatus('volume', id, 'deleted');
    const { entries, report } = await readJournal(journal);
    const deleted = entries.find((e) => e.call === 'deleteVolume' && e.resource === `volume:${id}` && e.event === 'end');
    expect(deleted).toMatchObject({ ok: true });
    expect(entries.find((e) => e.opId === extending.opId && e.event === 'end')).toMatchObject({ ok: false });
    expect(oldEndedFirst(entries, extending.opId, deleted!.opId)).toBe(true);
    expect(report.overlaps).toEqual([]);
    const owner = workers.find((w) => w.name === `worker-${extending.member.split('@')[0] ?? ''}`);
    expect(owner?.logs().some((l) => l.msg === 'aborting a run on request' && l.opId === extending.opId)).toBe(true);
  });

  it('a snapshot mid-create: cinder snapshot-delete --force aborts the copy, then deletes the snapshot', async () => {
    const volume = parseCinderDict(await cinder(api.apiUrl, 'create', '--name', 'source', '1'));
    await client.waitStatus('volume', volume.id!, 'available');
    const snap = parseCinderDict(await cinder(api.apiUrl, 'snapshot-create', volume.id!));
    const creating = await started(journal, 'createSnapshot', `snapshot:${snap.id!}`);
    await cinder(api.apiUrl, 'snapshot-delete', '--force', snap.id!);
    await client.waitStatus('snapshot', snap.id!, 'deleted');
    const { entries } = await readJournal(journal);
    const deleted = entries.find((e) => e.call === 'deleteSnapshot' && e.resource === `snapshot:${snap.id!}` && e.event === 'start');
    expect(deleted).toBeDefined();
    expect(oldEndedFirst(entries, creating.opId, deleted!.opId)).toBe(true);
    // The volume is whole again: deletable as any other.
    await cinder(api.apiUrl, 'delete', volume.id!);
    await client.waitStatus('volume', volume.id!, 'deleted');
  });

  it('cinder force-delete of an attached volume is refused, as in Cinder', async () => {
    const volume = parseCinderDict(await cinder(api.apiUrl, 'create', '--name', 'attached', '1'));
    await client.waitStatus('volume', volume.id!, 'available');
    await cinder(api.apiUrl, 'reset-state', '--state', 'in-use', '--attach-status', 'attached', volume.id!);
    await expect(cinder(api.apiUrl, 'force-delete', volume.id!)).rejects.toThrow(/must not be attached/);
    expect(await client.status('volume', volume.id!)).toBe('in-use');
  });
});

/** A call that ignores its abort: the force-delete gives up after its bound, says why, and touches nothing. */
describe('force-delete whose replaced call never stops', () => {
  let hearth: HearthProcess;
  let dir: string;
  let journal: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-force-timeout-'));
    journal = join(dir, 'journal.jsonl');
    hearth = await startHearth({
      name: 'fd-timeout',
      env: {
        HEARTH_DRIVER_NAME: 'fake',
        HEARTH_DRIVER_FAKE_JOURNAL: journal,
        HEARTH_DRIVER_FAKE_HANG: 'extendVolume',
        HEARTH_DRIVER_FAKE_HANG_IGNORES_ABORT: 'true',
        HEARTH_FORCE_DELETE_WAIT_MS: '1500',
        HEARTH_SHUTDOWN_GRACE_MS: '0',
      },
    });
  });
  afterAll(async () => {
    // Its call never ends: do not wait for a drain.
    await hearth?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('ends in error_deleting with a user message naming the operation that did not stop; no delete call was made', async () => {
    const created = parseCinderDict(await cinder(hearth.apiUrl, 'create', '1'));
    const client = new ClusterClient(hearth);
    await client.waitStatus('volume', created.id!, 'available');
    await cinder(hearth.apiUrl, 'extend', created.id!, '2');
    await started(journal, 'extendVolume', `volume:${created.id!}`);
    await cinder(hearth.apiUrl, 'force-delete', created.id!);
    await client.waitStatus('volume', created.id!, 'error_deleting');
    const message = parseCinderTable(await cinder(hearth.apiUrl, 'message-list')).find((m) => m['Resource UUID'] === created.id);
    expect(message).toMatchObject({ 'Event ID': 'VOLUME_VOLUME_901_901' });
    expect(message!['User Message']).toMatch(/delete volume:An earlier operation on it did not stop in time\. Force-delete waited 2 s for the extend_volume operation it replaced/);
    expect((await readJournal(journal)).entries.filter((e) => e.call === 'deleteVolume')).toEqual([]);
  });

  it('cinder snapshot-reset-state sets a snapshot\'s status (os-reset_status)', async () => {
    const volume = parseCinderDict(await cinder(hearth.apiUrl, 'create', '1'));
    const client = new ClusterClient(hearth);
    await client.waitStatus('volume', volume.id!, 'available');
    const snap = parseCinderDict(await cinder(hearth.apiUrl, 'snapshot-create', volume.id!));
    await client.waitStatus('snapshot', snap.id!, 'available');
    await cinder(hearth.apiUrl, 'snapshot-reset-state', '--state', 'error', snap.id!);
    expect(await client.status('snapshot', snap.id!)).toBe('error');
    await expect(cinder(hearth.apiUrl, 'snapshot-reset-state', '--state', 'creating', snap.id!)).rejects.toThrow(/no operation would ever finish it/);
    await cinder(hearth.apiUrl, 'snapshot-delete', snap.id!);
    await client.waitStatus('snapshot', snap.id!, 'deleted');
  });
});
