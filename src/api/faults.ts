import { BackendUnavailableError, CoordinatorError, type ErrorCode } from '../errors.js';
import { MalformedVersionError, VersionNotAcceptableError } from './microversion.js';

/** Cinder's fault names by HTTP status (cinder/api/openstack/wsgi.py). */
const FAULT_NAMES: Readonly<Record<number, string>> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** Longest fault message; longer ones are cut (a last guard: echoed values are previews already). */
export const MAX_FAULT_MESSAGE_CHARS = 1_000;

/** Cinder's error body: `{"<faultName>": {"code": N, "message": "…"}}`. */
export type FaultBody = Record<string, { code: number; message: string }>;

/** Builds the fault body for an HTTP status. */
export function faultBody(status: number, message: string): FaultBody {
  const text = message.length > MAX_FAULT_MESSAGE_CHARS ? `${message.slice(0, MAX_FAULT_MESSAGE_CHARS - 1)}…` : message;
  return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message: text } };
}

/** An error the API answers with a chosen status and message. */
export class HttpError extends CoordinatorError {
  readonly status: number;

  constructor(status: number, message: string, code: ErrorCode = 'INVALID_INPUT', options?: ErrorOptions) {
    super(code, message, options);
    this.status = status;
  }
}

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_INPUT: 400,
  USAGE: 400,
  INVALID_TRANSITION: 400,
  CONFLICT: 409,
  NOT_FOUND: 404,
  BACKEND_UNAVAILABLE: 503,
  BACKEND_ACCESS_DENIED: 503,
  CLOSED: 503,
  LOCK_TIMEOUT: 503,
  OUTCOME_UNKNOWN: 503,
  UNSUPPORTED: 501,
  UNAVAILABLE_DURING_UPGRADE: 400,
};

const INTERNAL = 'The server has either erred or is incapable of performing the requested operation.';

/** Fixed words for 5xx error codes that name no dependency of their own. */
const SERVER_FAULT_WORDS: Partial<Record<ErrorCode, string>> = {
  BACKEND_UNAVAILABLE: 'A service hearth depends on is unavailable.',
  BACKEND_ACCESS_DENIED: 'A service hearth depends on is unavailable.',
  CLOSED: 'The service is shutting down.',
  LOCK_TIMEOUT: 'A lock the request needs could not be taken in time.',
  OUTCOME_UNKNOWN: 'The state store did not confirm the change; it may have been applied. Read the resource again.',
  VERSION_UNSUPPORTED: 'A stored record has a version this process cannot read.',
};

/**
 * What a 5xx answer says: which dependency failed, in fixed words. The error's own message stays
 * in the log line (with the request id): it can hold what a caller must not see — etcd key paths
 * with the prefix, member addresses, a library's text.
 */
function serverFaultWords(err: unknown, status: number): string {
  if (status === 501) return 'The requested operation is not implemented.';
  if (err instanceof BackendUnavailableError) {
    switch (err.backend) {
      case 'etcd':
      case 'sqlite':
        return 'The state store is unavailable.';
      case 'amqp':
        return 'The job bus is unavailable.';
      case 'filesystem':
        return 'The data directory is unavailable.';
    }
  }
  return (err instanceof CoordinatorError ? SERVER_FAULT_WORDS[err.code] : undefined) ?? INTERNAL;
}

/**
 * The HTTP status and client-safe message for any thrown value. 4xx messages are hearth's own
 * words (values a caller sent appear only as bounded previews); 5xx messages are fixed words
 * naming the failing dependency, with `requestId` so that an operator can find the log line
 * that has the detail.
 */
export function toFault(err: unknown, requestId?: string): { status: number; message: string } {
  let status: number;
  let message: string;
  if (err instanceof HttpError) {
    status = err.status;
    message = err.message;
  } else if (err instanceof VersionNotAcceptableError) {
    status = 406;
    message = err.message;
  } else if (err instanceof MalformedVersionError) {
    status = 400;
    message = err.message;
  } else if (err instanceof CoordinatorError) {
    status = STATUS_BY_CODE[err.code] ?? 500;
    message = err.message;
  } else {
    status = 500;
    message = INTERNAL;
  }
  if (status >= 500) message = `${serverFaultWords(err, status)}${requestId === undefined ? '' : ` (request ${requestId})`}`;
  return { status, message };
}
