// The attachment API and volume types on a real single-node `hearth serve` (SQLite, the
// in-process bus, the file driver): python-cinderclient drives every operation unchanged at the
// microversion it needs; bad input gets Cinder's status codes and fault bodies with nothing
// written; races between several concurrent clients end with exactly one winner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../support/binaries.js';
import { cinder as cinderCli, parseCinderDict, parseCinderTable } from '../../support/cinder-cli.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { AttachmentApi } from '../../support/attachment-api.js';

describe('attachments and volume types on a single node (SQLite, file driver)', () => {
  let hearth: HearthProcess;
  let api: AttachmentApi;

  beforeAll(async () => {
    requireBinary('cinder', 'python3-cinderclient');
    hearth = await startHearth({ name: 'attachments' });
    api = new AttachmentApi(hearth.apiUrl);
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  const cinder = (version: string, ...args: string[]): Promise<string> => cinderCli(hearth.apiUrl, '--os-volume-api-version', version, ...args);

  it('cinderclient: reserve, connect (the file\'s path and format), complete, show, list, delete', async () => {
    const volume = await api.createAvailableVolume('att-1');
    const created = parseCinderDict(await cinder('3.27', 'attachment-create', volume, '6f1c0ab0-7b5d-4c39-9b57-4d1cf5a3e0a1'));
    expect(created.status).toBe('reserved');
    expect(created.volume_id).toBe(volume);
    const id = created.id ?? '';
    expect((await api.volume(volume)).status).toBe('reserved');

    const updated = await cinder('3.27', 'attachment-update', '--host', 'compute-1', '--mountpoint', '/dev/vdb', id);
    expect(updated).toContain('device_path');
    expect(updated).toContain(`volume-${volume}`);
    expect(updated).toContain('raw');
    expect((await api.volume(volume)).status).toBe('reserved');

    await cinder('3.44', 'attachment-complete', id);
    const shown = await api.volume(volume);
    expect(shown.status).toBe('in-use');
    expect(shown.attachments).toEqual([expect.objectContaining({ attachment_id: id, server_id: '6f1c0ab0-7b5d-4c39-9b57-4d1cf5a3e0a1', host_name: 'compute-1', device: '/dev/vdb' })]);

    const show = parseCinderDict(await cinder('3.27', 'attachment-show', id));
    expect(show.status).toBe('attached');
    const list = parseCinderTable(await cinder('3.27', 'attachment-list'));
    expect(list).toContainEqual(expect.objectContaining({ ID: id, 'Volume ID': volume, Status: 'attached' }));

    // In use: Cinder refuses to delete it.
    const refused = await api.raw('DELETE', `/volumes/${volume}`);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('status must be');

    await cinder('3.27', 'attachment-delete', id);
    const after = await api.volume(volume);
    expect(after.status).toBe('available');
    expect(after.attachments).toEqual([]);
  });

  it('cinderclient: attachment-create --connect goes straight to a connection', async () => {
    const volume = await api.createAvailableVolume('att-2');
    const out = await cinder('3.44', 'attachment-create', '--connect', 'true', '--host', 'compute-2', volume);
    expect(out).toContain('device_path');
    const id = parseCinderDict(out).id ?? '';
    await cinder('3.44', 'attachment-complete', id);
    expect((await api.volume(volume)).status).toBe('in-use');
    await cinder('3.44', 'attachment-delete', id);
    expect((await api.volume(volume)).status).toBe('available');
  });

  it('cinderclient: type-create, type-key multiattach, create --volume-type, two attachments, type-delete refused while in use', async () => {
    const type = parseCinderTable(await cinder('3.50', 'type-create', 'multi'))[0] ?? {};
    expect(type.Name).toBe('multi');
    await cinder('3.50', 'type-key', 'multi', 'set', 'multiattach=<is> True');
    const shown = await cinder('3.50', 'type-show', 'multi');
    expect(shown).toContain('<is> True');
    const types = parseCinderTable(await cinder('3.50', 'type-list'));
    expect(types.map((t) => t.Name)).toEqual(expect.arrayContaining(['__DEFAULT__', 'multi']));

    const created = parseCinderDict(await cinder('3.50', 'create', '--volume-type', 'multi', '--name', 'shared', '1'));
    expect(created.multiattach).toBe('True');
    expect(created.volume_type).toBe('multi');
    const volume = created.id ?? '';
    await api.waitStatus(volume, 'available');

    const a = parseCinderDict(await cinder('3.50', 'attachment-create', '--connect', 'true', '--host', 'h1', volume)).id ?? '';
    await cinder('3.50', 'attachment-complete', a);
    const b = parseCinderDict(await cinder('3.50', 'attachment-create', '--connect', 'true', '--host', 'h2', volume)).id ?? '';
    await cinder('3.50', 'attachment-complete', b);
    const v = await api.volume(volume);
    expect(v.status).toBe('in-use');
    expect((v.attachments as unknown[]).length).toBe(2);

    const inUse = await api.raw('DELETE', `/types/${type.ID}`);
    expect(inUse.status).toBe(400);
    await cinder('3.50', 'attachment-delete', a, b);
    expect((await api.volume(volume)).status).toBe('available');
    await api.deleteVolume(volume);
    await cinder('3.50', 'type-delete', 'multi');
    expect(parseCinderTable(await cinder('3.50', 'type-list')).map((t) => t.Name)).not.toContain('multi');
  });

  it('os-force_detach (admin, over HTTP) removes an attached attachment', async () => {
    const volume = await api.createAvailableVolume('att-3');
    const a = await api.attach(volume, { host: 'h3' });
    await api.complete(a);
    const res = await api.raw('POST', `/volumes/${volume}/action`, { 'os-force_detach': { attachment_id: a } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const v = await api.volume(volume);
    expect(v.status).toBe('available');
    expect(v.attachments).toEqual([]);
  });

  it('bad input: Cinder\'s status codes and fault bodies, nothing written', async () => {
    const volume = await api.createAvailableVolume('att-bad');
    const before = await api.volume(volume);
    const notObject = await api.raw('POST', '/attachments', { attachment: { volume_uuid: volume, connector: 'iqn.example' } });
    expect(notObject.status).toBe(400);
    expect(notObject.body).toEqual({ badRequest: { code: 400, message: expect.stringContaining('connector') as string } });
    const notArray = await api.raw('POST', '/attachments', { attachment: { volume_uuid: volume, connector: [1] } });
    expect(notArray.status).toBe(400);
    const badVolumeId = await api.raw('POST', '/attachments', { attachment: { volume_uuid: 'not-a-uuid' } });
    expect(badVolumeId.status).toBe(400);
    const unknownVolume = await api.raw('POST', '/attachments', { attachment: { volume_uuid: '00000000-0000-4000-8000-000000000000' } });
    expect(unknownVolume.status).toBe(404);
    expect(unknownVolume.body).toEqual({ itemNotFound: { code: 404, message: expect.any(String) as string } });
    for (const [method, path] of [
      ['GET', '/attachments/not-a-uuid'],
      ['PUT', '/attachments/not-a-uuid'],
      ['DELETE', '/attachments/not-a-uuid'],
      ['POST', '/attachments/not-a-uuid/action'],
    ] as const) {
      const res = await api.raw(method, path, method === 'PUT' ? { attachment: { connector: { host: 'x' } } } : method === 'POST' ? { 'os-complete': null } : undefined);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).toEqual({ itemNotFound: { code: 404, message: expect.stringContaining('attachment') as string } });
    }
    const unknownType = await api.raw('POST', '/volumes', { volume: { size: 1, volume_type: 'no-such-type' } });
    expect(unknownType.status).toBe(404);
    expect(unknownType.body).toEqual({ itemNotFound: { code: 404, message: 'Volume type with name no-such-type could not be found.' } });
    const multiattachField = await api.raw('POST', '/volumes', { volume: { size: 1, multiattach: true } });
    expect(multiattachField.status).toBe(400);
    expect(JSON.stringify(multiattachField.body)).toContain('multiattach parameter has been removed');
    const oldVersion = await api.raw('POST', '/attachments', { attachment: { volume_uuid: volume } }, '3.26');
    expect(oldVersion.status).toBe(404);
    expect(await api.volume(volume)).toEqual(before);

    // A volume in error: Cinder's InvalidVolume, nothing written.
    const reset = await api.raw('POST', `/volumes/${volume}/action`, { 'os-reset_status': { status: 'error' } });
    expect(reset.status).toBe(202);
    const errored = await api.volume(volume);
    const inError = await api.raw('POST', '/attachments', { attachment: { volume_uuid: volume } });
    expect(inError.status).toBe(400);
    expect(JSON.stringify(inError.body)).toContain('error state');
    expect(await api.volume(volume)).toEqual(errored);
  });

  it('race: concurrent attachment-creates on a volume that is not multiattach — exactly one wins, the others name the failed condition', async () => {
    const volume = await api.createAvailableVolume('att-race');
    const results = await Promise.all(Array.from({ length: 12 }, () => api.raw('POST', '/attachments', { attachment: { volume_uuid: volume } })));
    const won = results.filter((r) => r.status === 200);
    const lost = results.filter((r) => r.status !== 200);
    expect(won).toHaveLength(1);
    for (const r of lost) {
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.body)).toContain('status must be available to reserve (status is reserved)');
    }
    const v = await api.volume(volume);
    expect(v.status).toBe('reserved');
    const list = await api.raw('GET', `/attachments?volume_id=${volume}`);
    expect((list.body as { attachments: unknown[] }).attachments).toHaveLength(1);
  });

  it('race: delete against attach on many volumes — never attached and deleted at once', async () => {
    const volumes = await Promise.all(Array.from({ length: 6 }, (_, i) => api.createAvailableVolume(`att-del-${i}`)));
    await Promise.all(
      volumes.map(async (volume) => {
        const [attach, del] = await Promise.all([api.raw('POST', '/attachments', { attachment: { volume_uuid: volume, connector: { host: 'h' } } }), api.raw('DELETE', `/volumes/${volume}`)]);
        // Exactly one of the two was accepted.
        expect([attach.status === 200, del.status === 202].filter(Boolean), JSON.stringify({ attach: attach.body, del: del.body })).toHaveLength(1);
        if (del.status === 202) {
          await api.waitGone(volume);
        } else {
          const v = await api.volume(volume);
          expect(v.status).toBe('reserved');
          expect((v.attachments as unknown[]).length).toBe(0);
          expect((await api.raw('GET', `/attachments?volume_id=${volume}`)).body).toEqual({ attachments: [expect.objectContaining({ status: 'attaching' })] });
        }
      }),
    );
  });
});
