/**
 * Request bodies of the volume and snapshot API, validated strictly: every field
 * python-cinderclient 9.x sends is accepted; unknown fields, wrong types and out-of-range values
 * are refused with a message naming the field; features hearth does not have (creating from an
 * image, a backup, …) are refused rather than ignored.
 */
import { z } from 'zod';
import { preview, previewKeys } from '../preview.js';
import { InvalidInputError } from '../errors.js';
import { MIGRATION_STATUSES } from '../state/records.js';

/** The largest volume hearth accepts: 1 PiB. */
export const MAX_VOLUME_SIZE_GIB = 1_048_576;

const sizeSchema = z
  .union([z.number(), z.string().regex(/^[0-9]+$/, { error: 'must be a whole number of GiB' })], { error: 'must be a whole number of GiB' })
  .transform((v) => Number(v))
  .pipe(
    z
      .number()
      .refine((n) => Number.isInteger(n) && n >= 1 && n <= MAX_VOLUME_SIZE_GIB, { error: `must be a whole number of GiB from 1 to ${MAX_VOLUME_SIZE_GIB}` }),
  );

const text = z.string({ error: 'must be a string' }).max(255, { error: 'must be at most 255 characters' });
const metadata = z.record(text, text, { error: 'must be an object of string keys and string values' });

/** A field hearth cannot honour: only null (what cinderclient sends when unused) is allowed. */
function unsupported(feature: string) {
  return z.null({ error: `${feature}: not supported by hearth` }).optional();
}

const BOOL_WORDS: Readonly<Record<string, boolean>> = { true: true, t: true, yes: true, y: true, on: true, '1': true, false: false, f: false, no: false, n: false, off: false, '0': false };
const booleanLike = z.union([
  z.boolean(),
  z.string().refine((s) => s.toLowerCase() in BOOL_WORDS, { error: 'must be a boolean' }).transform((s) => BOOL_WORDS[s.toLowerCase()] as boolean),
]);

/** Cinder's `optional_uuid` of a create's sources: a UUID, or null (what cinderclient sends when unused). */
const sourceId = z
  .string({ error: 'must be a UUID' })
  .regex(/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/, { error: 'must be a UUID' })
  .nullable()
  .optional();

export const createVolumeBody = z.strictObject({
  volume: z
    .strictObject({
    // Optional with a source (the source's size then), as Cinder: `cinder create --snapshot-id` sends null.
    size: sizeSchema.nullable().optional(),
    name: text.nullable().optional(),
    description: text.nullable().optional(),
    volume_type: text.nullable().optional(),
    availability_zone: text.nullable().optional(),
    metadata: metadata.nullable().optional(),
    // Refused when true (Cinder's message, volume-routes.ts): multiattach comes from the volume type.
    multiattach: booleanLike.nullable().optional(),
    snapshot_id: sourceId,
    source_volid: sourceId,
    imageRef: unsupported('creating a volume from an image'),
    backup_id: unsupported('creating a volume from a backup'),
    consistencygroup_id: unsupported('consistency groups'),
    group_id: unsupported('groups'),
  })
    .superRefine((v, ctx) => {
      if ((v.size ?? null) === null && (v.snapshot_id ?? null) === null && (v.source_volid ?? null) === null) {
        // No input: described as a missing field (a size is required unless a source gives it).
        ctx.addIssue({ code: 'custom', path: ['size'], message: 'size is required', input: undefined });
      }
    }),
  'OS-SCH-HNT:scheduler_hints': unsupported('scheduler hints'),
});

export const extendBody = z.strictObject({ new_size: sizeSchema });

export const resetVolumeStatusBody = z
  .strictObject({
    status: text.optional(),
    attach_status: z.enum(['attached', 'detached'], { error: 'must be attached or detached' }).optional(),
    migration_status: z
      .enum(['none', ...MIGRATION_STATUSES], { error: `must be one of none, ${MIGRATION_STATUSES.join(', ')}` })
      .nullable()
      .optional(),
  })
  .refine((b) => b.status !== undefined || b.attach_status !== undefined || b.migration_status !== undefined, {
    error: "Must specify 'status', 'attach_status' or 'migration_status' for update.",
  });

export const createSnapshotBody = z.strictObject({
  snapshot: z.strictObject({
    volume_id: z.string({ error: 'must be a volume id' }).min(1, { error: 'must be a volume id' }).max(255),
    name: text.nullable().optional(),
    description: text.nullable().optional(),
    metadata: metadata.nullable().optional(),
    force: booleanLike.optional(),
  }),
});

export const resetSnapshotStatusBody = z.strictObject({ status: text });

/** Where a problem is, for a message: keys are the caller's, so each is a bounded preview. */
function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'string' && /^[A-Za-z0-9_:-]{1,40}$/.test(p) ? p : preview(typeof p === 'symbol' ? '(symbol)' : p, { maxChars: 40 }))).join('.');
}

function sentence(message: string): string {
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The first problem of a failed parse, worded for people (and close to Cinder's wording). */
export function describeIssue(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (!issue) return 'Invalid input received.';
  const where = [prefix, pathOf(issue.path)].filter((p) => p !== '').join('.');
  if (issue.code === 'unrecognized_keys') {
    return `Invalid input for field/attribute ${where || 'body'}. Additional properties are not allowed (${previewKeys(issue.keys, { quoted: true })} ${issue.keys.length === 1 ? 'was' : 'were'} unexpected).`;
  }
  if (where === '') return `Invalid request body: ${issue.input === undefined ? 'a JSON object is required.' : sentence(issue.message)}`;
  // With reportInput, a missing field is the only way to have no input (JSON has no undefined).
  if (issue.input === undefined) {
    // A missing field's name comes from the schema, not from the caller.
    return `Invalid input for field/attribute ${where}. '${String(issue.path[issue.path.length - 1] ?? where)}' is a required property.`;
  }
  return `Invalid input for field/attribute ${where}. Value: ${preview(issue.input)}. ${sentence(issue.message)}`;
}

/**
 * Validates `body` against `schema`; `prefix` names where it sits (an action name).
 *
 * @throws InvalidInputError naming the first field that is wrong.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(body ?? undefined, { reportInput: true });
  if (!result.success) throw new InvalidInputError(describeIssue(result.error, prefix));
  return result.data;
}

/** Splits an action body (`{"os-extend": {...}}`) into its one action name and argument. */
export function actionOf(body: unknown): { name: string; args: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('Invalid request body: an action body is an object with one action.');
  const keys = Object.keys(body);
  if (keys.length !== 1) throw new InvalidInputError(`Invalid request body: exactly one action expected, got ${keys.length === 0 ? 'none' : previewKeys(keys)}.`);
  const name = keys[0] as string;
  return { name, args: (body as Record<string, unknown>)[name] };
}
