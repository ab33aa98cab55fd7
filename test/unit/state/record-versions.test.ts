import { describe, expect, it } from 'vitest';
import { ProtocolMismatchError, VersionUnsupportedError } from '../../../src/protocol.js';
import { VOLUME_FIELDS_STEP, type RecordBody, RecordVersions, type SchemaStep } from '../../../src/state/record-versions.js';

/** A made-up step 1 → 2 that renames `size` to `size_gb`, as a later release might. */
const RENAME: SchemaStep = {
  from: 1,
  doc: 'size becomes size_gb',
  up: ({ size, ...rest }: RecordBody) => ({ ...rest, size_gb: size }),
  down: ({ size_gb, ...rest }: RecordBody) => ({ ...rest, size: size_gb }),
};

describe('record versions', () => {
  it('writes at the finalized schema and reads every schema of its range in the newest shape', () => {
    const codec = new RecordVersions({ min: 1, max: 2 }, 1, [RENAME]);
    const stored = codec.encode({ id: 'a', size_gb: 3 });
    expect(JSON.parse(stored)).toEqual({ v: 1, id: 'a', size: 3 });
    expect(codec.decode(stored, 'volume a')).toEqual({ id: 'a', size_gb: 3 });
    codec.setWriting(2);
    expect(JSON.parse(codec.encode({ id: 'a', size_gb: 3 }))).toEqual({ v: 2, id: 'a', size_gb: 3 });
    expect(codec.decode('{"v":2,"id":"a","size_gb":3}', 'volume a')).toEqual({ id: 'a', size_gb: 3 });
  });

  it('the previous release reads what the newer one writes before finalize', () => {
    const newer = new RecordVersions({ min: 1, max: 2 }, 1, [RENAME]);
    const older = new RecordVersions({ min: 1, max: 1 }, 1, []);
    expect(older.decode(newer.encode({ id: 'a', size_gb: 4 }), 'volume a')).toEqual({ id: 'a', size: 4 });
  });

  it('migrates one record to the target schema, and leaves one already there', () => {
    const codec = new RecordVersions({ min: 1, max: 2 }, 2, [RENAME]);
    expect(JSON.parse(codec.migrate('{"v":1,"id":"a","size":5}', 'volume a', 2)!)).toEqual({ v: 2, id: 'a', size_gb: 5 });
    expect(codec.migrate('{"v":2,"id":"a","size_gb":5}', 'volume a', 2)).toBeUndefined();
  });

  it('refuses a future, missing or mistyped version with a typed error naming the record', () => {
    const codec = new RecordVersions({ min: 1, max: 1 }, 1, []);
    expect(() => codec.decode('{"v":9,"id":"a"}', 'hearth/resources/volume/a')).toThrow(VersionUnsupportedError);
    expect(() => codec.decode('{"v":9,"id":"a"}', 'hearth/resources/volume/a')).toThrow(/record hearth\/resources\/volume\/a: version 9 is newer than this build reads \(1\)/);
    expect(() => codec.decode('{"id":"a"}', 'x')).toThrow(/no version field/);
    expect(() => codec.decode('{"v":"1","id":"a"}', 'x')).toThrow(/the version field is a string/);
    expect(() => codec.decode('not json', 'x')).toThrow(VersionUnsupportedError);
  });

  it('writes nothing once the cluster’s schema is beyond this build', () => {
    const codec = new RecordVersions({ min: 1, max: 1 }, 1, []);
    codec.setWriting(2);
    expect(() => codec.encode({ id: 'a' })).toThrow(ProtocolMismatchError);
  });
});

describe('VOLUME_FIELDS_STEP (schema 1 → 2: sources, attachments, volume types)', () => {
  const volume1 = { id: 'v1', status: 'available', attach_status: 'detached', volume_type: '__DEFAULT__', size: 1 };
  const DEFAULT_ID = '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11';

  const empty = { snapshot_id: null, source_volid: null, source_held: false, attachments: [], volume_type_id: DEFAULT_ID };

  it('up gives a volume of schema 1 no source, no attachments and the default type; snapshots and ops are left alone', () => {
    expect(VOLUME_FIELDS_STEP.up(volume1)).toEqual({ ...volume1, ...empty });
    const snapshot = { id: 's1', volume_id: 'v1', status: 'available' };
    expect(VOLUME_FIELDS_STEP.up(snapshot)).toEqual(snapshot);
    const op = { id: 'v1', kind: 'attach_volume', status: 'attaching', attach_status: 'x' };
    expect(VOLUME_FIELDS_STEP.up(op)).toEqual(op);
  });

  it('down round-trips what schema 1 expresses, and keeps attachments and a type id schema 1 has no word for', () => {
    expect(VOLUME_FIELDS_STEP.down(VOLUME_FIELDS_STEP.up(volume1))).toEqual(volume1);
    const attached = { ...volume1, attachments: [{ id: 'a1' }], volume_type_id: 'other' };
    expect(VOLUME_FIELDS_STEP.down(attached)).toEqual(attached);
    const versions = new RecordVersions({ min: 1, max: 2 }, 1, [VOLUME_FIELDS_STEP]);
    expect(JSON.parse(versions.encode(VOLUME_FIELDS_STEP.up(volume1)))).toEqual({ v: 1, ...volume1 });
    expect(versions.decode(JSON.stringify({ v: 1, ...volume1 }), 'volume v1')).toEqual({ ...volume1, ...empty });
  });

  it('down keeps the sources of a copy accepted before finalize, and drops empty ones', () => {
    const copy = { ...volume1, snapshot_id: null, source_volid: 'v0', source_held: true };
    expect(VOLUME_FIELDS_STEP.down({ ...copy, attachments: [], volume_type_id: DEFAULT_ID })).toEqual(copy);
    expect(VOLUME_FIELDS_STEP.down({ ...volume1, ...empty })).toEqual(volume1);
  });
});
