/**
 * The wire format of jobs and notices, and its validation (pure: no I/O).
 *
 * A job is a small pointer to an operation record in the state store (`ops/<type>/<id>`); the
 * record, not the message, is the truth. Messages are JSON, at most {@link MAX_MESSAGE_BYTES}
 * bytes, and carry a version `v`. Version rules: fields may be added within a version (readers
 * ignore fields they do not know); removing or changing the meaning of a field, or adding a
 * job `kind`, needs the next version (`PROTOCOL.messages` in `src/protocol.ts`).
 *
 * A process reads every version of its range and works with the newest shape: an older message
 * is converted up when decoded, and a message is converted down when it is encoded for a cluster
 * whose oldest live reader needs an earlier version. Each version travels on its own queues
 * (`topology.ts`), so a process never receives a version it cannot read; one that arrives anyway
 * (far in the future, without a version, or with a version that is not an integer) is
 * dead-lettered with a reason that says so (docs/upgrades.md).
 */
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { checkVersion, describeVersionProblem, PROTOCOL, type VersionRange } from '../protocol.js';

/** The newest message version this code writes (and the highest it reads). */
export const JOB_MESSAGE_VERSION = PROTOCOL.messages.max;

/** Largest encoded message accepted on publish and on delivery. */
export const MAX_MESSAGE_BYTES = 8 * 1024;

/** Longest op token a job carries; a publisher leaves a longer one out (the worker then reads the op). */
export const MAX_OP_TOKEN_LENGTH = 6 * 1024;

/** Operation kinds a job can carry (Cinder's manager method names; the state store's `OpKind`). */
export const JOB_KINDS = [
  'create_volume',
  'delete_volume',
  'extend_volume',
  'attach_volume',
  'detach_volume',
  'create_snapshot',
  'delete_snapshot',
  'clone_volume',
  'create_volume_from_snapshot',
] as const;

/** One of {@link JOB_KINDS}. */
export type JobKind = (typeof JOB_KINDS)[number];

/**
 * The message version each job kind first travels in. A kind added later needs a new version:
 * the API accepts it only once every live worker of the cluster reads that version.
 */
export const JOB_KIND_SINCE: Readonly<Record<JobKind, number>> = {
  create_volume: 1,
  delete_volume: 1,
  extend_volume: 1,
  // Named in version 1, but only workers that read version 2 run them (the attachment API).
  attach_volume: 2,
  detach_volume: 2,
  create_snapshot: 1,
  delete_snapshot: 1,
  // Version 2: copies (a clone, a volume from a snapshot) — issue 16.
  clone_volume: 2,
  create_volume_from_snapshot: 2,
};

/** The kinds a job of message version `version` may carry. */
export function jobKindsOf(version: number): [JobKind, ...JobKind[]] {
  return JOB_KINDS.filter((k) => JOB_KIND_SINCE[k] <= version) as [JobKind, ...JobKind[]];
}

/** Resource types an operation applies to; the `<type>` of `ops/<type>/<id>`. */
export const RESOURCE_TYPES = ['volume', 'snapshot'] as const;

/** One of {@link RESOURCE_TYPES}. */
export type ResourceType = (typeof RESOURCE_TYPES)[number];

// Ids end up in queue names, keys and file names: keep them printable and bounded.
const idSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'must be letters, digits, ".", "_", ":", "@" or "-"');

/** Schema of a version-1 job. */
export const jobMessageSchema = z.object({
  v: z.literal(1),
  /** Resource type: `ops/<type>/<id>`. */
  type: z.enum(RESOURCE_TYPES),
  /** Resource id (the volume or snapshot id). */
  id: idSchema,
  /** Id of the operation record this job points at; a claim compares it. */
  opId: idSchema,
  kind: z.enum(jobKindsOf(1)),
  /** Cluster id `<name>@<backend>` whose queue carries the job. */
  cluster: idSchema,
  /** The op record's `attempt` (claims so far) when it was published: 0 for a fresh op. */
  attempt: z.number().int().min(0).max(1_000_000),
  /** When the publisher sent it, epoch ms. */
  publishedAt: z.number().int().nonnegative(),
  /**
   * The op record exactly as the state store holds it (the store's `StoredOp` token, opaque
   * here), when the publisher had it: the worker's claim compares against it instead of reading
   * the op first; a stale or foreign token only costs that read. Added within version 1: older
   * workers ignore it.
   */
  op: z.string().max(MAX_OP_TOKEN_LENGTH).optional(),
});

/** Schema of a version-2 job: version 1's fields; `kind` may also be a copy (clone_volume, create_volume_from_snapshot). */
export const jobMessageSchemaV2 = jobMessageSchema.extend({ v: z.literal(2), kind: z.enum(jobKindsOf(2)) });

/**
 * A job: a pointer to one operation record, in the newest shape; `v` is the version it was
 * (or will be) sent in. See the module doc for versioning.
 */
export type JobMessage = Omit<z.infer<typeof jobMessageSchemaV2>, 'v'> & { readonly v: number };

/**
 * Schema of a cleanup request (Cinder's `do_cleanup` cast): clean up the orphaned operations of
 * one service. It goes to the service's cluster queue, so any live member takes it; `kind:
 * 'cleanup'` tells it from a job. Added within version 1: a worker older than this variant
 * dead-letters it as `malformed` (upgrade workers before the APIs that send it).
 */
export const cleanupMessageSchema = z.object({
  v: z.literal(1),
  kind: z.literal('cleanup'),
  /** The cluster whose queue carries it; the cleaner must be a member. */
  cluster: idSchema,
  /** The service (host id) whose orphans to clean. */
  host: idSchema,
  /** Only this resource (Cinder's `resource_type` / `resource_id`). */
  resourceType: z.enum(RESOURCE_TYPES).optional(),
  resourceId: idSchema.optional(),
  /** Ties the log lines of one `workers/cleanup` request together. */
  requestId: idSchema,
  /** When the publisher sent it, epoch ms. */
  publishedAt: z.number().int().nonnegative(),
});

/** Schema of a version-2 cleanup request: unchanged but for `v`. */
export const cleanupMessageSchemaV2 = cleanupMessageSchema.extend({ v: z.literal(2) });

/** A cleanup request for one service's orphans, in the newest shape (`v`: as for {@link JobMessage}). */
export type CleanupMessage = Omit<z.infer<typeof cleanupMessageSchema>, 'v'> & { readonly v: number };

/** Every message the cluster and host queues carry: a job, or a cleanup request. */
export type BusMessage = JobMessage | CleanupMessage;

/** The id logs and AMQP's `correlationId` use: the op id of a job, the request id of a cleanup. */
export function correlationIdOf(message: BusMessage): string {
  return message.kind === 'cleanup' ? message.requestId : message.opId;
}

/** Schema of a cluster-wide notice (fanout; best effort, see `JobBus.publishNotice`). */
export const noticeSchema = z.object({
  // Notices stay at version 1: every release reads it (they are best effort and carry no job).
  v: z.literal(1),
  /** What happened, kebab-case, e.g. `failover-completed`. */
  type: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be kebab-case'),
  cluster: idSchema,
  /** Host id of the sender. */
  from: idSchema,
  /** Small free-form payload. */
  data: z.record(z.string(), z.unknown()).default({}),
  at: z.number().int().nonnegative(),
});

/** A cluster-wide notice. */
export type Notice = z.infer<typeof noticeSchema>;

/** Why a message went to the dead-letter queue; a bounded set (it is a metric label). */
export const DEAD_LETTER_REASONS = [
  'malformed',
  'oversized',
  'unsupported-version',
  'misrouted',
  'delivery-limit',
  'rejected',
] as const;

/** One of {@link DEAD_LETTER_REASONS}. */
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** The outcome of decoding a delivered message. */
export type DecodeResult =
  | { readonly ok: true; readonly job: BusMessage }
  | { readonly ok: false; readonly reason: DeadLetterReason; readonly detail: string };

/**
 * One message version: the schemas of a job and a cleanup request as they travel, and how a
 * message of this version is converted to the next one and back.
 */
interface MessageFormat {
  readonly job: z.ZodType;
  readonly cleanup: z.ZodType;
  /** This version → the next (reading an older message); absent on the newest. */
  readonly up?: (message: Record<string, unknown>) => Record<string, unknown>;
  /** The next version → this one (writing for older readers); absent on the newest. */
  readonly down?: (message: Record<string, unknown>) => Record<string, unknown>;
}

/** Every message version this code knows, by number. */
const FORMATS: Readonly<Record<number, MessageFormat>> = {
  // 1 → 2 adds job kinds only: a message converts as it is. A job of a kind version 1 lacks
  // fails version 1's schema when written down (the API's skew gate keeps that from happening).
  1: { job: jobMessageSchema, cleanup: cleanupMessageSchema, up: (m) => m, down: (m) => m },
  2: { job: jobMessageSchemaV2, cleanup: cleanupMessageSchemaV2 },
};

function formatOf(version: number): MessageFormat {
  const format = FORMATS[version];
  if (!format) throw new InvalidInputError(`message version ${version} is not one this build knows (${PROTOCOL.messages.min}–${PROTOCOL.messages.max})`);
  return format;
}

/**
 * Decodes a delivered job or cleanup request, never throwing: a message that is not valid JSON,
 * does not match the schema of its version, is too large, or has a version outside `reads`
 * (missing, not an integer, or one this build does not read) comes back as a dead-letter reason
 * with a short detail. A message of an older version is returned in the newest shape.
 */
export function decodeJob(content: Uint8Array, reads: VersionRange = PROTOCOL.messages): DecodeResult {
  if (content.byteLength > MAX_MESSAGE_BYTES) {
    return { ok: false, reason: 'oversized', detail: `${content.byteLength} bytes > ${MAX_MESSAGE_BYTES}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: `not JSON: ${(err as Error).message}`.slice(0, 200) };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'malformed', detail: 'not a JSON object' };
  const checked = checkVersion((parsed as Record<string, unknown>).v, reads);
  if (!checked.ok) {
    const reason = checked.problem.kind === 'unsupported' ? 'unsupported-version' : 'malformed';
    return { ok: false, reason, detail: describeVersionProblem(checked.problem, reads).slice(0, 200) };
  }
  const format = FORMATS[checked.version];
  if (!format) return { ok: false, reason: 'unsupported-version', detail: `version ${checked.version} is not one this build knows` };
  const result = schemaOf(format, parsed).safeParse(parsed);
  if (!result.success) return { ok: false, reason: 'malformed', detail: summarizeIssues(result.error).slice(0, 200) };
  let message = result.data as Record<string, unknown>;
  for (let v = checked.version; v < JOB_MESSAGE_VERSION; v++) message = formatOf(v).up?.(message) ?? message;
  return { ok: true, job: { ...message, v: checked.version } as unknown as BusMessage };
}

/** The schema a message claims to follow: `kind: 'cleanup'` is a cleanup request, anything else a job. */
function schemaOf(format: MessageFormat, parsed: unknown): z.ZodType {
  const cleanup = typeof parsed === 'object' && parsed !== null && 'kind' in parsed && parsed.kind === 'cleanup';
  return cleanup ? format.cleanup : format.job;
}

/**
 * Validates and encodes a job (or cleanup request) for publishing, at its version `v` (converted
 * down from the newest shape when `v` is older).
 *
 * @throws InvalidInputError when the job does not match the schema of its version, its version
 *   is not one this build writes, or it is too large; nothing is sent then.
 */
export function encodeJob(job: BusMessage): Buffer {
  const version = job.v;
  if (!Number.isSafeInteger(version) || version < PROTOCOL.messages.min || version > JOB_MESSAGE_VERSION) {
    throw new InvalidInputError(`invalid job: version ${String(version)} is not one this build writes (${PROTOCOL.messages.min}–${JOB_MESSAGE_VERSION})`);
  }
  let message = { ...job, v: version } as Record<string, unknown>;
  for (let v = JOB_MESSAGE_VERSION - 1; v >= version; v--) message = formatOf(v).down?.(message) ?? message;
  const result = schemaOf(formatOf(version), message).safeParse(message);
  if (!result.success) throw new InvalidInputError(`invalid job: ${summarizeIssues(result.error)}`);
  return checkedBuffer(JSON.stringify(result.data), 'job');
}

/** Validates and encodes a notice. @throws InvalidInputError */
export function encodeNotice(notice: Notice): Buffer {
  const result = noticeSchema.safeParse(notice);
  if (!result.success) throw new InvalidInputError(`invalid notice: ${summarizeIssues(result.error)}`);
  return checkedBuffer(JSON.stringify(result.data), 'notice');
}

/** Decodes a notice; undefined when it is not a valid one (notices are best effort). */
export function decodeNotice(content: Uint8Array): Notice | undefined {
  if (content.byteLength > MAX_MESSAGE_BYTES) return undefined;
  try {
    const result = noticeSchema.safeParse(JSON.parse(Buffer.from(content).toString('utf8')));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

function checkedBuffer(text: string, what: string): Buffer {
  const buf = Buffer.from(text, 'utf8');
  if (buf.byteLength > MAX_MESSAGE_BYTES) {
    throw new InvalidInputError(`${what} is ${buf.byteLength} bytes encoded; the limit is ${MAX_MESSAGE_BYTES}`);
  }
  return buf;
}

function summarizeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
