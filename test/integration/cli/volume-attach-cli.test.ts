// `hearth volume attach|attachment-update|attachment-complete|detach|force-detach|attachments|
// attachment-show` and `hearth volume type-*` against a real `hearth serve`, run in-process
// through runCli.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { AttachmentApi } from '../../support/attachment-api.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) }, {});
  return { code, out, err };
}

describe('hearth volume: attachments and volume types', () => {
  let hearth: HearthProcess;
  let url: string[];
  let api: AttachmentApi;
  beforeAll(async () => {
    hearth = await startHearth({ name: 'volume-attach-cli' });
    url = ['--url', hearth.apiUrl];
    api = new AttachmentApi(hearth.apiUrl);
  });
  afterAll(async () => {
    await hearth?.stop();
  });

  it('reserve, connect, complete, list, show, detach', async () => {
    const volume = await api.createAvailableVolume('cli-att');
    const reserved = await cli('volume', 'attach', volume, '--server', '6f1c0ab0-7b5d-4c39-9b57-4d1cf5a3e0a1', '--json', ...url);
    expect(reserved.code, reserved.err).toBe(0);
    const attachment = JSON.parse(reserved.out) as { id: string; status: string };
    expect(attachment.status).toBe('reserved');

    const updated = await cli('volume', 'attachment-update', attachment.id, '--host', 'compute-1', '--mountpoint', '/dev/vdb', ...url);
    expect(updated.code, updated.err).toBe(0);
    expect(updated.out).toContain('device_path');

    expect((await cli('volume', 'attachment-complete', attachment.id, ...url)).code).toBe(0);
    expect((await api.volume(volume)).status).toBe('in-use');
    const list = await cli('volume', 'attachments', '--volume', volume, '--json', ...url);
    expect(JSON.parse(list.out)).toEqual([expect.objectContaining({ id: attachment.id, status: 'attached', volume_id: volume })]);
    const shown = await cli('volume', 'attachment-show', attachment.id, ...url);
    expect(shown.out).toMatch(/│ status\s+│ attached\s+│/);

    const refused = await cli('volume', 'delete', volume, ...url);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('status must be');

    expect((await cli('volume', 'detach', attachment.id, ...url)).code).toBe(0);
    expect((await api.volume(volume)).status).toBe('available');
  });

  it('attach --host connects at once; force-detach removes it', async () => {
    const volume = await api.createAvailableVolume('cli-force');
    const attached = await cli('volume', 'attach', volume, '--host', 'compute-2', '--json', ...url);
    expect(attached.code, attached.err).toBe(0);
    const id = (JSON.parse(attached.out) as { id: string }).id;
    expect((await cli('volume', 'attachment-complete', id, ...url)).code).toBe(0);
    const forced = await cli('volume', 'force-detach', volume, ...url);
    expect(forced.code, forced.err).toBe(0);
    expect((await api.volume(volume)).status).toBe('available');
  });

  it('type-create --multiattach, type-list, type-show, type-key, create --type, type-delete', async () => {
    const created = await cli('volume', 'type-create', 'cli-multi', '--multiattach', '--json', ...url);
    expect(created.code, created.err).toBe(0);
    expect(JSON.parse(created.out)).toMatchObject({ name: 'cli-multi', extra_specs: { multiattach: '<is> True' } });
    const list = await cli('volume', 'type-list', '--json', ...url);
    expect((JSON.parse(list.out) as { name: string }[]).map((t) => t.name)).toEqual(['__DEFAULT__', 'cli-multi']);
    expect((await cli('volume', 'type-key', 'cli-multi', 'set', 'color=blue', ...url)).code).toBe(0);
    expect((await cli('volume', 'type-show', 'cli-multi', ...url)).out).toContain('color');
    expect((await cli('volume', 'type-key', 'cli-multi', 'unset', 'color', ...url)).code).toBe(0);

    const volume = await cli('volume', 'create', '1', '--type', 'cli-multi', '--json', ...url);
    expect(volume.code, volume.err).toBe(0);
    const v = JSON.parse(volume.out) as { id: string; multiattach: boolean; volume_type: string };
    expect(v).toMatchObject({ multiattach: true, volume_type: 'cli-multi' });
    await api.waitStatus(v.id, 'available');
    const inUse = await cli('volume', 'type-delete', 'cli-multi', ...url);
    expect(inUse.code).toBe(1);
    expect(inUse.err).toContain('still in use');
    await api.deleteVolume(v.id);
    expect((await cli('volume', 'type-delete', 'cli-multi', ...url)).code).toBe(0);

    const unknown = await cli('volume', 'create', '1', '--type', 'no-such', ...url);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('Volume type with name no-such could not be found.');
  });
});
