/**
 * User messages (Cinder's messages API, microversion 3.3): what an asynchronous failure tells
 * the user who asked — a create that could not be placed, an extend refused for want of space,
 * a force-delete that could not prove the old operation stopped. Each names its resource and an
 * event (`VOLUME_<resource>_<action>_<detail>`, Cinder's ids), carries the text shown by
 * `cinder message-list`, and expires after `messageTtlMs` (its `guaranteed_until`).
 *
 * The port has one adapter per backend: `EtcdMessageStore` (`messages/<id>`) and
 * `SqliteMessageStore` (a table beside the single node's state). Messages are few and
 * short-lived, so listing reads them all and filters in memory.
 *
 * Failure semantics: every call may fail with a retryable `BackendUnavailableError`; a message
 * is best effort to its writer (a worker logs a message it could not record and goes on: the
 * resource's status is the truth).
 */

/** Cinder's `resource_type` values hearth uses. */
export type MessageResourceType = 'VOLUME' | 'VOLUME_SNAPSHOT';

/** One user message as stored. Times are epoch ms. */
export interface UserMessage {
  /** A UUID. */
  readonly id: string;
  readonly projectId: string;
  /** The request or operation it came from (`req-<op id>` for a worker's). */
  readonly requestId: string;
  readonly resourceType: MessageResourceType;
  readonly resourceUuid: string | null;
  /** `VOLUME_<resource type>_<action id>_<detail id>`. */
  readonly eventId: string;
  readonly actionId: string;
  readonly detailId: string;
  /** Cinder's only level. */
  readonly messageLevel: 'ERROR';
  /** `<action>:<detail>`, as Cinder renders it, and hearth's why after it. */
  readonly userMessage: string;
  readonly createdAtMs: number;
  /** `guaranteed_until`: it may be removed after this. */
  readonly expiresAtMs: number;
}

/** See the module doc. */
export interface MessageStore {
  create(message: UserMessage): Promise<void>;
  /** The message, or undefined when there is none (or it expired). */
  get(id: string, nowMs: number): Promise<UserMessage | undefined>;
  /** Every message not expired at `nowMs`, of one project or (undefined) all. */
  list(projectId: string | undefined, nowMs: number): Promise<UserMessage[]>;
  /** True when it was there. */
  delete(id: string): Promise<boolean>;
  /** Removes the messages expired at `nowMs`; resolves with how many. */
  deleteExpired(nowMs: number): Promise<number>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** An action of Cinder's `message_field.Action` (and hearth's own, 9xx). */
export interface MessageAction {
  readonly id: string;
  readonly text: string;
}

/** The actions hearth reports on. */
export const ACTIONS = {
  scheduleAllocateVolume: { id: '001', text: 'schedule allocate volume' },
  extendVolume: { id: '007', text: 'extend volume' },
  deleteSnapshot: { id: '010', text: 'delete snapshot' },
  /** hearth's own: Cinder records no message for a volume delete. */
  deleteVolume: { id: '901', text: 'delete volume' },
} as const satisfies Record<string, MessageAction>;

/** The details hearth reports. */
export const DETAILS = {
  noBackendAvailable: { id: '003', text: 'Could not find any available weighted backend.' },
  /** hearth's own. */
  earlierOperationRunning: { id: '901', text: 'An earlier operation on it did not stop in time.' },
} as const satisfies Record<string, MessageAction>;

/** What a writer says; the store's caller stamps id and times. */
export interface MessageInput {
  readonly projectId: string;
  readonly requestId: string;
  readonly resourceType: MessageResourceType;
  readonly resourceUuid: string;
  readonly action: MessageAction;
  readonly detail: MessageAction;
  /** hearth's why, appended to Cinder's text. */
  readonly why?: string;
}

/** A full message from what a writer says. */
export function newMessage(input: MessageInput, id: string, nowMs: number, ttlMs: number): UserMessage {
  const text = `${input.action.text}:${input.detail.text}${input.why ? ` ${input.why}` : ''}`;
  return {
    id,
    projectId: input.projectId,
    requestId: input.requestId,
    resourceType: input.resourceType,
    resourceUuid: input.resourceUuid,
    eventId: `VOLUME_${input.resourceType}_${input.action.id}_${input.detail.id}`,
    actionId: input.action.id,
    detailId: input.detail.id,
    messageLevel: 'ERROR',
    userMessage: text.slice(0, 1024),
    createdAtMs: nowMs,
    expiresAtMs: nowMs + ttlMs,
  };
}

/** Reads a stored message; undefined when the value is not one. */
export function decodeMessage(text: string): UserMessage | undefined {
  try {
    const o = JSON.parse(text) as Partial<UserMessage>;
    if (typeof o.id !== 'string' || typeof o.projectId !== 'string' || typeof o.createdAtMs !== 'number' || typeof o.expiresAtMs !== 'number') return undefined;
    return o as UserMessage;
  } catch {
    return undefined;
  }
}
