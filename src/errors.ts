/**
 * hearth's error model.
 *
 * Expected contention (a lost compare-and-swap, a busy lock on a try) is returned as a value.
 * Everything else is a {@link CoordinatorError}: a stable `code`, a `retryable` flag that one
 * predicate ({@link isRetryable}) reads, and the original error as `cause`. Adapters translate
 * library errors (etcd3, amqplib, better-sqlite3) into these at their boundary.
 */

/** Stable machine-readable error codes. */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_ACCESS_DENIED'
  | 'CLOSED'
  | 'ILLEGAL_STATE'
  | 'LOCK_TIMEOUT'
  | 'LOCK_LOST'
  | 'DATA_DIR_LOCKED'
  | 'NOT_DISTRIBUTED'
  | 'FENCED'
  | 'INVALID_TRANSITION'
  | 'CONFLICT'
  | 'NOT_FOUND'
  | 'INVALID_INPUT'
  | 'ALREADY_ALIVE'
  | 'DRIVER_ERROR'
  | 'COPY_FAILED'
  | 'UNSUPPORTED'
  | 'ABORTED'
  | 'OUTCOME_UNKNOWN'
  | 'CLUSTER_DISABLED'
  | 'VERSION_UNSUPPORTED'
  | 'UNAVAILABLE_DURING_UPGRADE'
  | 'INTERNAL';

/** Options accepted by every {@link CoordinatorError}. */
export interface CoordinatorErrorOptions extends ErrorOptions {
  /** Whether retrying the same call later may succeed. */
  readonly retryable?: boolean;
}

/** Base class of every error hearth raises on purpose. */
export class CoordinatorError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: CoordinatorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** One problem found while validating configuration. */
export interface ConfigIssue {
  /** Dotted option path, e.g. `etcd.endpoints`. */
  readonly path: string;
  /** The environment variable that sets it, e.g. `HEARTH_ETCD_ENDPOINTS`. */
  readonly env?: string;
  readonly message: string;
}

/** The configuration is invalid; `issues` lists every problem at once. */
export class ConfigError extends CoordinatorError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super('CONFIG_INVALID', formatIssues(issues), options);
    this.issues = issues;
  }
}

function formatIssues(issues: readonly ConfigIssue[]): string {
  const lines = issues.map((i) => `  - ${i.path}${i.env ? ` (${i.env})` : ''}: ${i.message}`);
  return `invalid configuration:\n${lines.join('\n')}`;
}

/** A command line that cannot be carried out as written. */
export class UsageError extends CoordinatorError {
  constructor(message: string, options?: ErrorOptions) {
    super('USAGE', message, options);
  }
}

/** A dependency (etcd, RabbitMQ, the SQLite file) cannot be used right now. */
export class BackendUnavailableError extends CoordinatorError {
  readonly backend: 'etcd' | 'amqp' | 'sqlite' | 'filesystem';

  constructor(backend: BackendUnavailableError['backend'], message: string, options?: ErrorOptions) {
    super('BACKEND_UNAVAILABLE', message, { ...options, retryable: true });
    this.backend = backend;
  }
}

/** Why a dependency refused hearth (see {@link BackendAccessError}). */
export type AccessDeniedReason =
  /** The user name, password or certificate's user was not accepted. */
  | 'credentials'
  /** TLS failed: the server's certificate is not trusted, or the server rejected ours. */
  | 'tls'
  /** The server requires a client certificate and none was sent. */
  | 'client-certificate'
  /** Authenticated, but not allowed to use the vhost, a prefix, an exchange or a queue. */
  | 'permission';

/**
 * A dependency is reachable but refuses hearth: wrong credentials, an untrusted certificate,
 * or missing permissions. Retryable like any unavailable backend (hearth keeps trying, so an
 * operator can fix the broker or the Secret without a restart), but with its own code and a
 * `reason`, since waiting alone will not fix it. Messages name options and users, never secrets.
 */
export class BackendAccessError extends BackendUnavailableError {
  override readonly code: ErrorCode = 'BACKEND_ACCESS_DENIED';
  readonly reason: AccessDeniedReason;

  constructor(backend: BackendUnavailableError['backend'], reason: AccessDeniedReason, message: string, options?: ErrorOptions) {
    super(backend, message, options);
    this.reason = reason;
  }
}

/** A call was made on a component that is already closed. */
export class ClosedError extends CoordinatorError {
  readonly component: string;

  constructor(component: string) {
    super('CLOSED', `${component} is closed`);
    this.component = component;
  }
}

/** A component was used in a state that does not allow the call. */
export class IllegalStateError extends CoordinatorError {
  readonly component: string;
  readonly state: string;

  constructor(component: string, state: string, message?: string) {
    super('ILLEGAL_STATE', message ?? `${component} cannot do this while ${state}`);
    this.component = component;
    this.state = state;
  }
}

/** A resource that does not exist. */
export class NotFoundError extends CoordinatorError {
  readonly resource: string;
  readonly id: string;

  constructor(resource: string, id: string, message?: string) {
    super('NOT_FOUND', message ?? `${resource} ${id} could not be found.`);
    this.resource = resource;
    this.id = id;
  }
}

/** A host tried to join while another incarnation of it is still alive. */
export class AlreadyAliveError extends CoordinatorError {
  readonly host: string;
  /** The incarnation that holds `alive/<host>`. */
  readonly holder: string;

  constructor(host: string, holder: string) {
    super(
      'ALREADY_ALIVE',
      `host ${host} is already alive as incarnation ${holder}; another process uses this host name, or its previous run has not expired yet`,
      { retryable: true },
    );
    this.host = host;
    this.holder = holder;
  }
}

/** Input that fails validation; nothing was written. */
export class InvalidInputError extends CoordinatorError {
  constructor(message: string, options?: ErrorOptions) {
    super('INVALID_INPUT', message, options);
  }
}

/**
 * A volume driver call failed. `retryable` says whether the same call may succeed later (a
 * backend hiccup) or never will (a size conflict, a missing source).
 */
export class DriverError extends CoordinatorError {
  /** The driver's name, e.g. `file`. */
  readonly driver: string;
  /** The call that failed, e.g. `createVolume`. */
  readonly call: string;

  constructor(driver: string, call: string, message: string, options: CoordinatorErrorOptions = {}) {
    super('DRIVER_ERROR', `${driver} driver ${call}: ${message}`, options);
    this.driver = driver;
    this.call = call;
  }
}

/** Why a file copy failed (see {@link CopyError}). */
export type CopyFailure =
  /** The copy program (`cp`) could not be started: it is not installed or not on `PATH`. */
  | 'tool-missing'
  /** The copy program does not understand the options it needs (it is not GNU coreutils `cp`). */
  | 'tool-unsupported'
  /** The copy program ran and failed; `errno` says why when its message named an error. */
  | 'failed';

/**
 * Copying a file failed (see `src/drivers/sparse-copy.ts`). `errno` is the system error the
 * copy program reported (`EIO`, `ENOSPC`, …), when it named one; `retryable` is true for
 * errors of a share that is briefly away. Drivers wrap it in a {@link DriverError}.
 */
export class CopyError extends CoordinatorError {
  readonly source: string;
  readonly target: string;
  readonly failure: CopyFailure;
  /** A Node.js error code such as `EIO`, or undefined when the failure named none. */
  readonly errno: string | undefined;
  /** What the copy program wrote to stderr (at most a few KiB), or empty. */
  readonly stderr: string;

  constructor(
    details: { source: string; target: string; failure: CopyFailure; errno?: string; stderr?: string },
    message: string,
    options: CoordinatorErrorOptions = {},
  ) {
    super('COPY_FAILED', message, options);
    this.source = details.source;
    this.target = details.target;
    this.failure = details.failure;
    this.errno = details.errno;
    this.stderr = details.stderr ?? '';
  }
}

/**
 * A clustered worker was configured with a volume driver that does not declare
 * `supportsActiveActive` (Cinder's `SUPPORTS_ACTIVE_ACTIVE`); the worker refuses to start.
 */
export class ActiveActiveUnsupportedError extends CoordinatorError {
  readonly driver: string;

  constructor(driver: string) {
    super('UNSUPPORTED', `the ${driver} volume driver does not support active/active; a clustered worker cannot use it`);
    this.driver = driver;
  }
}

/** A wait was cancelled through its `AbortSignal`. */
export class AbortedError extends CoordinatorError {
  constructor(what: string, options?: ErrorOptions) {
    super('ABORTED', `${what} was aborted`, options);
  }
}

/**
 * A write was refused because its fence no longer holds: the writer lost what entitled it to
 * write (its lease, its alive key, its lock), or a guard proving someone else dead failed.
 * Not retryable: the writer must stop, not try again.
 */
export class FencedError extends CoordinatorError {
  /** The guard that failed, e.g. `/hearth/alive/node1@rbd create_revision == 42 (is 0)` or `holds()`. */
  readonly guard: string;
  /** The whole fence, as the holder described it. */
  readonly fence: string;

  constructor(guard: string, fence: string, options?: ErrorOptions) {
    super('FENCED', `write fenced off: ${guard} no longer holds (fence: ${fence})`, options);
    this.guard = guard;
    this.fence = fence;
  }
}

/** A status change the state machine does not allow, or a write that would break its invariants. */
export class InvalidTransitionError extends CoordinatorError {
  readonly resource: string;
  readonly from: string;
  readonly to: string;

  constructor(resource: string, from: string, to: string, message?: string) {
    super('INVALID_TRANSITION', message ?? `${resource} cannot go from ${from} to ${to}`);
    this.resource = resource;
    this.from = from;
    this.to = to;
  }
}

/**
 * A write was sent but its outcome could not be established (the reply was lost and the
 * re-read that would reconcile it failed too). It may still land. Retryable: re-read the
 * record and decide again; never re-send the same write blindly.
 */
export class OutcomeUnknownError extends CoordinatorError {
  readonly key: string;

  constructor(key: string, message: string, options?: ErrorOptions) {
    super('OUTCOME_UNKNOWN', message, { ...options, retryable: true });
    this.key = key;
  }
}

/** True when retrying the failed call later may succeed. */
export function isRetryable(err: unknown): boolean {
  return err instanceof CoordinatorError && err.retryable;
}

/** The error's message, whatever was thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A short text of the error, for readiness details and status fields (never for logs: log `{ err }`). */
export function describeError(err: unknown): string {
  return messageOf(err).slice(0, 300);
}

/**
 * A cluster of several hosts was asked to run on a backend that is node-local (the single-node
 * store, membership and locks): Cinder silently runs "active/active" on node-local file locks;
 * hearth refuses.
 */
export class NotDistributedError extends CoordinatorError {
  constructor(message: string) {
    super('NOT_DISTRIBUTED', message);
  }
}
