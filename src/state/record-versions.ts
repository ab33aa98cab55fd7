/**
 * The versions of stored records (volumes, snapshots, op records) and the conversions between
 * them (pure: no I/O).
 *
 * Every record carries its schema version in `v`. Code works with one shape, the newest this
 * build reads; a record of an older schema is converted up when read, and written back down to
 * the schema the cluster has finalized, so the previous release can still read everything until
 * an operator runs `hearth upgrade finalize` (docs/upgrades.md). A record whose version this
 * build cannot read — newer than it knows, missing, or not an integer — is a typed
 * {@link VersionUnsupportedError} naming the record, and nothing is written on its account: a
 * write reads the record first and stops there.
 */
import { checkVersion, formatRange, PROTOCOL, ProtocolMismatchError, type VersionRange, VersionUnsupportedError } from '../protocol.js';

/** A record as stored: one JSON object. */
export type RecordBody = Record<string, unknown>;

/**
 * How records change from schema `from` to `from + 1`. `up` is the online data migration of the
 * step (and how an older record is read); `down` is how a record is written for a cluster that
 * has not finalized `from + 1` yet. Both are pure and must round-trip what `from` can express.
 */
export interface SchemaStep {
  readonly from: number;
  /** What the step changes, in a sentence (logs, `hearth upgrade status`). */
  readonly doc: string;
  up(body: RecordBody): RecordBody;
  down(body: RecordBody): RecordBody;
}

/** The volume fields schema 2 adds for copies (issue 16). */
const SOURCE_FIELDS = ['snapshot_id', 'source_volid', 'source_held'] as const;

/** The default volume type's id, which a volume of schema 1 has implicitly. */
const DEFAULT_VOLUME_TYPE_ID = '3d7d2a34-2a8f-5d0e-9a0a-5f1c7b0e4c11';

/** True for the body of a volume record (snapshots have a `volume_id`, ops a `kind` and an `opId`). */
function isVolumeBody(body: RecordBody): boolean {
  return typeof body.attach_status === 'string' && body.volume_id === undefined && body.kind === undefined && !('opId' in body);
}

/**
 * Schema 1 → 2, release 2's volume fields (issue 16):
 *
 * - sources: a volume names the snapshot or volume it was created from (`snapshot_id`,
 *   `source_volid`, Cinder's columns) and whether its copy still holds that source
 *   (`source_held`);
 * - the attachment API: its attachments (`attachments`, Cinder's `volume_attachment` rows) and
 *   its volume type's id (`volume_type_id`).
 *
 * `up` gives a schema-1 volume the fields empty (no source, no attachments, the default type).
 * `down` drops each only when schema 1 can do without it: empty sources, an empty list, the
 * default type. A copy or an attachment accepted before `finalize` (the API accepts them as soon
 * as every live worker reads message 2) keeps its fields, and a release-1 process carries fields
 * it does not know through its writes unchanged (records are written whole) — so neither
 * direction loses what a record says.
 */
export const VOLUME_FIELDS_STEP: SchemaStep = {
  from: 1,
  doc: "release 2's volume fields: the snapshot or volume it was created from and whether its copy holds it (snapshot_id, source_volid, source_held); its attachments and volume type id (the attachment API)",
  up(body) {
    if (!isVolumeBody(body)) return body;
    return {
      ...body,
      snapshot_id: body.snapshot_id ?? null,
      source_volid: body.source_volid ?? null,
      source_held: body.source_held ?? false,
      attachments: body.attachments ?? [],
      volume_type_id: body.volume_type_id ?? DEFAULT_VOLUME_TYPE_ID,
    };
  },
  down(body) {
    if (!isVolumeBody(body)) return body;
    const { attachments, volume_type_id, ...rest } = body;
    const out: RecordBody = {
      ...rest,
      ...(Array.isArray(attachments) && attachments.length > 0 ? { attachments } : {}),
      ...(volume_type_id !== undefined && volume_type_id !== DEFAULT_VOLUME_TYPE_ID ? { volume_type_id } : {}),
    };
    const noSource = (body.snapshot_id ?? null) === null && (body.source_volid ?? null) === null && body.source_held !== true;
    if (noSource) for (const field of SOURCE_FIELDS) delete out[field];
    return out;
  },
};

/** Every schema step this build knows, oldest first. */
export const SCHEMA_STEPS: readonly SchemaStep[] = [VOLUME_FIELDS_STEP];

/** The step from `from` to `from + 1`, if this build knows it. */
export function schemaStep(from: number, steps: readonly SchemaStep[] = SCHEMA_STEPS): SchemaStep | undefined {
  return steps.find((s) => s.from === from);
}

/**
 * The record codec of one process: reads every schema in `reads`, writes at `writing` (the
 * cluster's finalized schema, followed by the upgrade concern as it changes).
 */
export class RecordVersions {
  private writingValue: number;

  constructor(
    readonly reads: VersionRange = PROTOCOL.schema,
    writing: number = reads.min,
    private readonly steps: readonly SchemaStep[] = SCHEMA_STEPS,
  ) {
    this.writingValue = writing;
  }

  /** The schema records are written at now. */
  get writing(): number {
    return this.writingValue;
  }

  /**
   * Follows the cluster's finalized schema. One beyond `reads` (the cluster moved on without
   * this process, e.g. while it was cut off) makes every write fail: nothing is written at a
   * schema the others no longer expect.
   */
  setWriting(version: number): void {
    this.writingValue = version;
  }

  /**
   * The stored form of a record (the newest shape, without `v`) at the writing schema.
   *
   * @throws ProtocolMismatchError when the cluster's schema is beyond this build.
   */
  encode(record: object): string {
    const to = this.writingValue;
    if (to > this.reads.max || to < this.reads.min) {
      throw new ProtocolMismatchError(`the cluster's record schema is ${to}; this build writes ${formatRange(this.reads)}: nothing is written (restart it on a release that supports schema ${to})`);
    }
    let body = { ...(record as RecordBody) };
    delete body.v;
    for (let from = this.reads.max - 1; from >= to; from--) body = this.step(from).down(body);
    return JSON.stringify({ v: to, ...body });
  }

  /**
   * A stored record in the newest shape (without `v`).
   *
   * @param subject names the record in an error, e.g. its etcd key.
   * @throws VersionUnsupportedError when its version cannot be read (a value that is not a JSON
   *   object has no version field either).
   */
  decode<R>(json: string, subject: string): R {
    const body = parseBody(json);
    const checked = checkVersion(body.v, this.reads);
    if (!checked.ok) throw new VersionUnsupportedError(`record ${subject}`, checked.problem, this.reads);
    let out = body;
    for (let from = checked.version; from < this.reads.max; from++) out = this.step(from).up(out);
    if (out === body) out = { ...body };
    delete out.v;
    return out as R;
  }

  /**
   * The record rewritten at schema `to` (the migration of one record), or undefined when it is
   * at `to` or later already.
   *
   * @throws VersionUnsupportedError when its version cannot be read.
   */
  migrate(json: string, subject: string, to: number): string | undefined {
    const version = parseBody(json).v;
    if (typeof version === 'number' && version >= to) return undefined;
    const record = this.decode<RecordBody>(json, subject);
    let body = record;
    for (let from = this.reads.max - 1; from >= to; from--) body = this.step(from).down(body);
    return JSON.stringify({ v: to, ...body });
  }

  private step(from: number): SchemaStep {
    const step = schemaStep(from, this.steps);
    if (!step) throw new ProtocolMismatchError(`this build has no conversion between record schemas ${from} and ${from + 1}`);
    return step;
  }
}

function parseBody(json: string): RecordBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return {};
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as RecordBody) : {};
}
