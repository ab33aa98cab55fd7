import {
  ClientClosedError,
  EtcdError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  isRecoverableError,
} from 'etcd3';
import { BackendUnavailableError, ClosedError, CoordinatorError, messageOf } from '../errors.js';

/**
 * Translates an error thrown by the etcd3 package into hearth's error model, keeping the
 * original as `cause`. Transport failures and deadlines become a retryable
 * {@link BackendUnavailableError}; a deadline on a write means its outcome is unknown.
 */
export function fromEtcdError(err: unknown, what: string): CoordinatorError {
  if (err instanceof CoordinatorError) return err;
  if (err instanceof ClientClosedError) return new ClosedError('etcd client');
  if (err instanceof GRPCDeadlineExceededError) {
    return new BackendUnavailableError('etcd', `${what}: etcd did not answer in time`, { cause: err });
  }
  if (err instanceof EtcdLeaseInvalidError) {
    return new CoordinatorError('LOCK_LOST', `${what}: the session lease expired or was revoked`, { cause: err });
  }
  if (err instanceof EtcdPermissionDeniedError) {
    return new CoordinatorError('BACKEND_UNAVAILABLE', `${what}: etcd denied permission: ${err.message}`, { cause: err });
  }
  if (err instanceof Error && isRecoverableError(err)) {
    return new BackendUnavailableError('etcd', `${what}: etcd is unreachable (${err.message})`, { cause: err });
  }
  if (err instanceof EtcdError) {
    return new BackendUnavailableError('etcd', `${what}: ${err.message}`, { cause: err });
  }
  return new CoordinatorError('INTERNAL', `${what}: ${messageOf(err)}`, { cause: err });
}
