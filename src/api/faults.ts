import { CoordinatorError, type ErrorCode } from '../errors.js';
import { VersionNotAcceptableError } from './microversion.js';

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

/** Cinder's error body: `{"<faultName>": {"code": N, "message": "…"}}`. */
export type FaultBody = Record<string, { code: number; message: string }>;

/** Builds the fault body for an HTTP status. */
export function faultBody(status: number, message: string): FaultBody {
  return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
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
  CLOSED: 503,
  LOCK_TIMEOUT: 503,
  OUTCOME_UNKNOWN: 503,
  UNSUPPORTED: 501,
};

/** The HTTP status and client-safe message for any thrown value. */
export function toFault(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  if (err instanceof VersionNotAcceptableError) return { status: 406, message: err.message };
  if (err instanceof CoordinatorError) {
    const status = STATUS_BY_CODE[err.code] ?? 500;
    return { status, message: status === 500 ? 'The server has either erred or is incapable of performing the requested operation.' : err.message };
  }
  return { status: 500, message: 'The server has either erred or is incapable of performing the requested operation.' };
}
