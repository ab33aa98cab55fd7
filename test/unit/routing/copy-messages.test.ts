// Message version 2 and record schema 2 (issue 16, copies): the new job kinds travel only in
// version 2, version-1 jobs still read, and the record step round-trips a volume's sources.
import { describe, expect, it } from 'vitest';
import { PROTOCOL } from '../../../src/protocol.js';
import { decodeJob, encodeJob, JOB_KIND_SINCE, type JobMessage } from '../../../src/routing/job-message.js';
import { RecordVersions } from '../../../src/state/record-versions.js';
import { skewGate } from '../../../src/composition/api.js';
import type { UpgradeParts } from '../../../src/composition/upgrade.js';

const clone: JobMessage = { v: 2, type: 'volume', id: 'vol-1', opId: 'op-1', kind: 'clone_volume', cluster: 'ceph@rbd', attempt: 0, publishedAt: 1 };

describe('message version 2: copies', () => {
  it('carries clone_volume and create_volume_from_snapshot at version 2 only', () => {
    expect(PROTOCOL.messages).toEqual({ min: 1, max: 2 });
    expect(JOB_KIND_SINCE.clone_volume).toBe(2);
    expect(JOB_KIND_SINCE.create_volume_from_snapshot).toBe(2);
    expect(decodeJob(encodeJob(clone))).toEqual({ ok: true, job: clone });
    const fromSnapshot = { ...clone, kind: 'create_volume_from_snapshot' as const };
    expect(decodeJob(encodeJob(fromSnapshot))).toEqual({ ok: true, job: fromSnapshot });
    // Written down for a release-1 reader it cannot be: the skew gate keeps the API from trying.
    expect(() => encodeJob({ ...clone, v: 1 })).toThrow(/invalid job: kind/);
    // A release-1 reader's schema refuses it on delivery too.
    expect(decodeJob(Buffer.from(JSON.stringify({ ...clone, v: 1 })))).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('reads version-1 jobs and writes version-1 kinds down for release-1 readers unchanged', () => {
    const old: JobMessage = { ...clone, v: 1, kind: 'create_volume' };
    expect(decodeJob(encodeJob(old))).toEqual({ ok: true, job: old });
    expect(JSON.parse(encodeJob(old).toString())).toMatchObject({ v: 1, kind: 'create_volume' });
  });
});

describe('the API\'s skew gate and copies', () => {
  it('refuses a copy while a live worker reads messages up to 1 only, and accepts it once all read 2; other kinds throughout', () => {
    let version = 1;
    const gate = skewGate({ view: { workerMessageVersion: () => version } } as unknown as Pick<UpgradeParts, 'view'>);
    expect(gate.refuses('ceph@rbd', 'clone_volume')).toBe('the live workers of ceph@rbd read messages up to version 1, and clone_volume needs version 2');
    expect(gate.refuses('ceph@rbd', 'create_volume_from_snapshot')).toMatch(/needs version 2/);
    expect(gate.refuses('ceph@rbd', 'create_volume')).toBeUndefined();
    expect(gate.refuses('ceph@rbd', 'delete_snapshot')).toBeUndefined();
    version = 2;
    expect(gate.refuses('ceph@rbd', 'clone_volume')).toBeUndefined();
  });
});

describe('record schema 2: volume sources', () => {
  const volume = { id: 'v', status: 'creating', attach_status: 'detached', size: 1 };
  // The same step gives a volume its attachments and its type's id (the attachment API).
  const attachmentFields = { attachments: [], volume_type_id: '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11' };

  it('gives a schema-1 volume empty sources, and writes an empty one back without them', () => {
    const codec = new RecordVersions({ min: 1, max: 2 }, 1);
    const read = codec.decode<Record<string, unknown>>(JSON.stringify({ v: 1, ...volume }), 'test');
    expect(read).toEqual({ ...volume, snapshot_id: null, source_volid: null, source_held: false, ...attachmentFields });
    expect(JSON.parse(codec.encode(read))).toEqual({ v: 1, ...volume });
    // Snapshots and op records are not volumes: untouched.
    const snapshot = { id: 's', volume_id: 'v', status: 'available' };
    expect(codec.decode(JSON.stringify({ v: 1, ...snapshot }), 'test')).toEqual(snapshot);
    const op = { opId: 'o', type: 'volume', attach_status: 'x' };
    expect(codec.decode(JSON.stringify({ v: 1, ...op }), 'test')).toEqual(op);
  });

  it('keeps a copy\'s sources when writing for a cluster not finalized yet (nothing lost either way)', () => {
    const codec = new RecordVersions({ min: 1, max: 2 }, 1);
    const copy = { ...volume, snapshot_id: null, source_volid: 'src', source_held: true };
    const stored = codec.encode(copy);
    expect(JSON.parse(stored)).toEqual({ v: 1, ...copy });
    expect(codec.decode(stored, 'test')).toEqual({ ...copy, ...attachmentFields });
    // Finalized: written at 2 as it is; the migration of a schema-1 record adds the empty fields.
    const finalized = new RecordVersions({ min: 1, max: 2 }, 2);
    expect(JSON.parse(finalized.encode(copy))).toEqual({ v: 2, ...copy });
    expect(JSON.parse(finalized.migrate(JSON.stringify({ v: 1, ...volume }), 'test', 2)!)).toEqual({ v: 2, ...volume, snapshot_id: null, source_volid: null, source_held: false, ...attachmentFields });
  });
});
