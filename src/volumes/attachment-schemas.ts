/**
 * Request bodies of the attachment and volume-type API, validated strictly as Cinder's JSON
 * schemas do (cinder/api/schemas/attachments.py, volume_types.py, types_extra_specs.py):
 * unknown fields, wrong types and ids that are not UUIDs are refused with a message naming the
 * field, before anything is read or written.
 */
import { z } from 'zod';

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A UUID (Cinder's `parameter_types.uuid`), dashes optional, lower-cased. */
export const uuid = z
  .string({ error: 'must be a UUID' })
  .regex(UUID, { error: 'must be a UUID' })
  .transform((s) => s.toLowerCase());

/** True for a UUID in Cinder's sense. */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/** os-brick's connector: any JSON object (not an array, not a string). */
const connector = z.record(z.string(), z.unknown(), { error: 'must be an object' });

export const createAttachmentBody = z.strictObject({
  attachment: z.strictObject({
    volume_uuid: uuid,
    instance_uuid: uuid.nullable().optional(),
    connector: connector.nullable().optional(),
    mode: z.enum(['rw', 'ro'], { error: 'must be rw or ro' }).optional(),
  }),
});

export const updateAttachmentBody = z.strictObject({
  attachment: z.strictObject({
    connector: connector.refine((c) => Object.keys(c).length > 0, { error: 'must have at least one property' }),
  }),
});

export const forceDetachBody = z
  .strictObject({
    attachment_id: uuid.nullable().optional(),
    connector: connector.nullable().optional(),
  })
  .nullable()
  .optional();

const text = z.string({ error: 'must be a string' }).max(255, { error: 'must be at most 255 characters' });
const BOOL_WORDS: Readonly<Record<string, boolean>> = { true: true, t: true, yes: true, y: true, on: true, '1': true, false: false, f: false, no: false, n: false, off: false, '0': false };
const booleanLike = z.union([
  z.boolean(),
  z.string().refine((s) => s.toLowerCase() in BOOL_WORDS, { error: 'must be a boolean' }).transform((s) => BOOL_WORDS[s.toLowerCase()] as boolean),
]);

export const createTypeBody = z.strictObject({
  volume_type: z.strictObject({
    name: text.min(1, { error: 'must not be empty' }),
    description: text.nullable().optional(),
    is_public: booleanLike.optional(),
    'os-volume-type-access:is_public': booleanLike.optional(),
    extra_specs: z.record(text.min(1), text).optional(),
  }),
});

export const extraSpecsBody = z.strictObject({
  extra_specs: z.record(text.min(1, { error: 'must not be empty' }), text, { error: 'must be an object of string keys and string values' }),
});
