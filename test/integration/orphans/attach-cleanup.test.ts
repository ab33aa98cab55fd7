// kill -9 of a worker in the middle of a connection (attach_volume) and of a disconnection
// (detach_volume), with real etcd, RabbitMQ and `hearth serve` processes and the fake driver
// hanging in those calls: cinderclient's work-cleanup settles each attachment by hearth's own
// rules (docs/cleanup.md — Cinder has none): an orphaned attach leaves its attachment reserved
// and the volume reserved; an orphaned detach leaves the attachment attached and the volume in-use.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttachmentApi } from '../../support/attachment-api.js';
import { cinder } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { memberEnv, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

const CLUSTER_ID = 'attcl@be';

describe('a worker killed mid-attach and mid-detach: work-cleanup settles the attachments', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let dir: string;
  let journal: string;
  let env: Record<string, string>;
  let api: HearthProcess;
  let client: AttachmentApi;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    dir = await mkdtemp(join(tmpdir(), 'hearth-attach-cleanup-'));
    journal = join(dir, 'journal.jsonl');
    env = memberEnv(etcd, amqp, 'attcl', journal);
    api = await startHearth({ name: 'attcl-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    client = new AttachmentApi(api.apiUrl);
  });
  afterAll(async () => {
    await Promise.all(procs.filter((p) => p.process.alive).map((p) => p.stop()));
    await amqp?.close();
    await etcd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('attaching → reserved (attachment kept, unconnected); detaching → in-use (attachment attached)', async () => {
    // A healthy worker makes the volumes and the attachment to detach, then leaves.
    const helper = await startWorker(env, 'helper');
    procs.push(helper);
    const [toAttach, toDetach] = await Promise.all([client.createAvailableVolume('orphan-attach'), client.createAvailableVolume('orphan-detach')]);
    const attached = await client.attach(toDetach, { host: 'compute-1' });
    await client.complete(attached);
    await helper.stop();

    // The victim hangs in both connection calls; the requests wait for it.
    const victim = await startWorker(env, 'victim', { HEARTH_DRIVER_FAKE_HANG: 'initializeConnection,terminateConnection' });
    procs.push(victim);
    const attachAnswer = client.raw('POST', '/attachments', { attachment: { volume_uuid: toAttach, connector: { host: 'compute-2' } } });
    const detachAnswer = client.raw('DELETE', `/attachments/${attached}`);
    await Promise.all([started(journal, 'initializeConnection', `volume:${toAttach}`), started(journal, 'terminateConnection', `volume:${toDetach}`)]);
    expect((await client.volume(toAttach)).status).toBe('attaching');
    expect((await client.volume(toDetach)).status).toBe('detaching');

    const rescuer = await startWorker(env, 'rescuer');
    procs.push(rescuer);
    await victim.kill();
    await waitFor(async () => ((await (await fetch(`${api.apiUrl}/hearth/v1/orphans`)).json()) as { orphans: unknown[] }).orphans.length === 2, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'two orphans in the API view',
    });
    const out = await cinder(api.apiUrl, 'work-cleanup', '--cluster', CLUSTER_ID);
    expect(out).toContain('Following services will be cleaned:');

    await client.waitStatus(toAttach, 'reserved');
    await client.waitStatus(toDetach, 'in-use');
    const attachList = (await client.raw('GET', `/attachments/detail?volume_id=${toAttach}`)).body as { attachments: Record<string, unknown>[] };
    expect(attachList.attachments).toEqual([expect.objectContaining({ status: 'reserved', connection_info: {} })]);
    const detachShown = (await client.raw('GET', `/attachments/${attached}`)).body as { attachment: Record<string, unknown> };
    expect(detachShown.attachment).toMatchObject({ id: attached, status: 'attached' });
    // The waiting requests answer: the connection was not made, the attachment not deleted.
    expect((await attachAnswer).status).toBe(500);
    expect((await detachAnswer).status).toBe(500);

    // Both can be finished normally afterwards.
    const reservedId = String(attachList.attachments[0]?.id);
    const updated = await client.raw('PUT', `/attachments/${reservedId}`, { attachment: { connector: { host: 'compute-2' } } });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect((await client.raw('DELETE', `/attachments/${attached}`)).status).toBe(200);
    expect((await client.volume(toDetach)).status).toBe('available');
  });
});
