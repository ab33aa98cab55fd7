// Attachment races on the cluster store: a real etcd and RabbitMQ, three API-only processes and
// two workers (separate OS processes, the fake driver journalling every call). Many concurrent
// attempts go through different processes at once; the compare-and-swap of the volume record
// decides, so exactly one wins, and the journal shows no connection made on a volume being
// deleted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttachmentApi, type Answer } from '../../support/attachment-api.js';
import { cinder, parseCinderDict } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { memberEnv, readJournal, startWorker } from '../../support/orphans-cluster.js';

describe('attachments on etcd: races between several API processes', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let dir: string;
  let journal: string;
  const apis: HearthProcess[] = [];
  const workers: HearthProcess[] = [];
  let clients: AttachmentApi[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    dir = await mkdtemp(join(tmpdir(), 'hearth-attach-etcd-'));
    journal = join(dir, 'journal.jsonl');
    const env = memberEnv(etcd, amqp, 'att', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '20' });
    apis.push(
      ...(await Promise.all(['a1', 'a2', 'a3'].map((host) => startHearth({ name: `api-${host}`, env: { ...env, HEARTH_HOST: host, HEARTH_ROLES: 'api' } })))),
    );
    workers.push(...(await Promise.all([startWorker(env, 'w1'), startWorker(env, 'w2')])));
    clients = apis.map((a) => new AttachmentApi(a.apiUrl));
  });
  afterAll(async () => {
    await Promise.all([...apis, ...workers].map((p) => p.stop()));
    await amqp?.close();
    await etcd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const client = (i: number): AttachmentApi => clients[i % clients.length] as AttachmentApi;

  it('two or more attachment-creates on a volume that is not multiattach, through three processes: exactly one wins per volume', async () => {
    const volumes = await Promise.all(Array.from({ length: 4 }, (_, i) => client(i).createAvailableVolume(`race-${i}`)));
    await Promise.all(
      volumes.map(async (volume) => {
        const answers = await Promise.all(
          Array.from({ length: 9 }, (_, i) => client(i).raw('POST', '/attachments', { attachment: { volume_uuid: volume, connector: i % 2 === 0 ? null : { host: `h${i}` } } })),
        );
        const won = answers.filter((a) => a.status === 200);
        expect(won, JSON.stringify(answers)).toHaveLength(1);
        for (const lost of answers.filter((a) => a.status !== 200)) {
          expect(lost.status).toBe(400);
          // The refusal names the condition that failed: the status another process set.
          expect(JSON.stringify(lost.body)).toMatch(/Volume status must be available to (reserve|attach) \(status is (reserved|attaching)\)/);
        }
        const list = (await client(0).raw('GET', `/attachments?volume_id=${volume}`)).body as { attachments: unknown[] };
        expect(list.attachments).toHaveLength(1);
      }),
    );
  });

  it('delete against attach, through different processes: never attached and deleted at once', async () => {
    const volumes = await Promise.all(Array.from({ length: 6 }, (_, i) => client(i).createAvailableVolume(`del-${i}`)));
    const outcomes = await Promise.all(
      volumes.map(async (volume, i) => {
        const [attach, del]: [Answer, Answer] = await Promise.all([
          client(i).raw('POST', '/attachments', { attachment: { volume_uuid: volume, connector: { host: 'h' } } }),
          client(i + 1).raw('DELETE', `/volumes/${volume}`),
        ]);
        expect([attach.status === 200, del.status === 202].filter(Boolean), JSON.stringify({ attach: attach.body, del: del.body })).toHaveLength(1);
        if (del.status === 202) await client(i).waitGone(volume);
        else expect((await client(i).volume(volume)).status).toBe('reserved');
        return { volume, deleted: del.status === 202 };
      }),
    );
    const { entries, report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    for (const { volume, deleted } of outcomes) {
      const calls = entries.filter((e) => e.resource === `volume:${volume}` && e.event === 'start').map((e) => e.call);
      // A deleted volume was never connected; a connected one was never deleted.
      if (deleted) expect(calls).not.toContain('initializeConnection');
      else expect(calls).not.toContain('deleteVolume');
    }
  });

  it('a multiattach type on etcd (cinderclient): concurrent attachments land one at a time as in Cinder, and a second attachment joins a volume in use', async () => {
    const run = (...args: string[]): Promise<string> => cinder(apis[0]?.apiUrl ?? '', '--os-volume-api-version', '3.50', ...args);
    await run('type-create', 'shared');
    await run('type-key', 'shared', 'set', 'multiattach=<is> True');
    const volume = parseCinderDict(await run('create', '--volume-type', 'shared', '1')).id ?? '';
    await client(1).waitStatus(volume, 'available');
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => client(i).raw('POST', '/attachments', { attachment: { volume_uuid: volume, connector: { host: `h${i}` } } })));
    // While one connection is being made the volume is attaching (Cinder refuses new reservations then too).
    const won = answers.filter((a) => a.status === 200);
    expect(won.length, JSON.stringify(answers.map((a) => a.body))).toBeGreaterThanOrEqual(1);
    for (const a of answers.filter((x) => x.status !== 200)) expect(JSON.stringify(a.body)).toMatch(/status must be available or in-use to attach/);
    const ids = won.map((a) => (a.body as { attachment: { id: string } }).attachment.id);
    for (const [i, id] of ids.entries()) await client(i).complete(id);
    // In use, it takes another attachment.
    const more = await client(2).attach(volume, { host: 'late' });
    await client(0).complete(more);
    ids.push(more);
    const v = await client(2).volume(volume);
    expect(v.status).toBe('in-use');
    expect((v.attachments as unknown[]).length).toBe(ids.length);
    for (const [i, id] of ids.entries()) expect((await client(i + 1).raw('DELETE', `/attachments/${id}`)).status).toBe(200);
    expect((await client(0).volume(volume)).status).toBe('available');
  });
});
