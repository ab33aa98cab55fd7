/**
 * Member failover for the etcd client: with every member of the cluster in `etcd.endpoints`, a
 * member that is down, hung or without a leader must cost a call at most — not one call in
 * three until it is back (the etcd3 package picks a member at random per call; its own fault
 * handling, a 3-failure circuit breaker and blind retries, is off: a transaction must never be
 * re-sent blindly).
 *
 * - Endpoint health: a call that fails in a way that says the member cannot serve (no
 *   connection, the connection dropped, no answer by the deadline, `etcdserver: no leader`)
 *   marks it unhealthy for `unhealthyMs`; calls and new streams go to healthy members first.
 *   When every member is unhealthy, calls go through anyway (one of them may be back; failing
 *   fast without trying would turn a blip into an outage).
 * - Same-request retry on another member, only where it is safe: a read (a range, a
 *   transaction of ranges only, a lease's time to live) after any such failure; a write only
 *   when the failure proves the member never took it (no connection could be made, or the
 *   member refused it for want of a leader). Anything else — a write whose connection dropped
 *   or whose deadline passed — is returned to the caller, whose reconcile path re-reads.
 * - A call that every member refused for want of a leader (an election) is held and sent
 *   again for up to `holdMs` (hearth: `etcd.callTimeoutMs`) instead of failing at once; an API
 *   write then waits out a leader election rather than answering 503.
 * - Every call and stream carries etcd's `hasleader` requirement: a member cut off from its
 *   leader refuses at once instead of holding a call or a watch silently.
 * - Streams whose member stops answering (a keepalive unanswered, gRPC's own keepalive ping
 *   timing out) mark that member unhealthy, so the stream opened next goes elsewhere.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IDefaultPolicyContext, IPolicy } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, type IOptions } from 'etcd3';

/** How a failed call bears on its member, and on retrying it elsewhere. */
export interface FailureClass {
  /** The member could not serve it (down, hung, cut off, no leader): prefer the others for a while. */
  readonly memberDown: boolean;
  /** The member certainly did not apply it: safe to send again, even a write. */
  readonly notApplied: boolean;
  /** A bounded label for metrics. */
  readonly result: 'unavailable' | 'deadline' | 'no_leader' | 'error';
}

const NOT_CONNECTED = /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|Failed to connect|connect ETIMEDOUT/i;

/** Classifies an error of one etcd call (as the etcd3 package throws it). */
export function classifyFailure(err: unknown): FailureClass {
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes('etcdserver: no leader')) return { memberDown: true, notApplied: true, result: 'no_leader' };
  if (message.includes('etcdserver: too many requests')) return { memberDown: false, notApplied: true, result: 'error' };
  if (err instanceof GRPCDeadlineExceededError) return { memberDown: true, notApplied: false, result: 'deadline' };
  const code = (err as { code?: unknown }).code;
  if (/\bUNAVAILABLE\b/.test(message) || code === 14 || (err instanceof Error && err.name === 'GRPCUnavailableError')) {
    return { memberDown: true, notApplied: NOT_CONNECTED.test(message), result: 'unavailable' };
  }
  return { memberDown: false, notApplied: false, result: 'error' };
}

/** Methods that change nothing (or, like a revoke, change it once however often sent), whatever their payload. */
const READ_METHODS = new Set(['range', 'leaseTimeToLive', 'leaseLeases', 'status', 'memberList', 'authenticate', 'leaseRevoke']);

/** True when the call `method(payload)` may be sent again: it changes nothing in etcd, or nothing more. */
export function isReadOnly(method: string, payload: unknown): boolean {
  if (READ_METHODS.has(method)) return true;
  if (method !== 'txn' || typeof payload !== 'object' || payload === null) return false;
  const { success = [], failure = [] } = payload as { success?: unknown[]; failure?: unknown[] };
  return [...success, ...failure].every((op) => typeof op === 'object' && op !== null && 'request_range' in op && Object.keys(op).length === 1);
}

/** Where calls went, for `hearth_etcd_calls_total{endpoint,result}`. */
export interface EtcdCallRecorder {
  call(endpoint: string, result: 'ok' | FailureClass['result']): void;
}

/** Options of {@link FailoverEtcd3}. */
export interface FailoverOptions {
  /** How long a member that failed is avoided while another is healthy (default 2 s). */
  readonly unhealthyMs?: number;
  /**
   * How long a call that every member refused for want of a leader (an election) is held and
   * sent again before its error is returned (default 0).
   */
  readonly holdMs?: number;
  readonly recorder?: EtcdCallRecorder;
  readonly now?: () => number;
}

/** The health of each member, as the last calls on it showed. */
export class EndpointHealth {
  private readonly downUntil = new Map<string, number>();

  constructor(
    private readonly endpoints: readonly string[],
    private readonly unhealthyMs: number,
    private readonly now: () => number,
  ) {}

  /** Marks `endpoint` unhealthy for a while. */
  down(endpoint: string): void {
    this.downUntil.set(endpoint, this.now() + this.unhealthyMs);
  }

  /** Marks `endpoint` healthy (a call on it succeeded). */
  up(endpoint: string): void {
    this.downUntil.delete(endpoint);
  }

  healthy(endpoint: string): boolean {
    return (this.downUntil.get(endpoint) ?? 0) <= this.now();
  }

  /** Whether a call should skip `endpoint`: it is unhealthy and some other member (not in `tried`) is not. */
  skip(endpoint: string, tried?: ReadonlySet<string>): boolean {
    return !this.healthy(endpoint) && this.endpoints.some((e) => e !== endpoint && !tried?.has(e) && this.healthy(e));
  }
}

/** Thrown by a member's policy to make the pool try the next member; never reaches a caller while another is healthy. */
class SkippedEndpoint extends Error {
  constructor(endpoint: string) {
    super(`etcd member ${endpoint} was skipped: it failed moments ago`);
  }
}

/** The slice of gRPC's call metadata used here. */
interface Metadata {
  clone(): Metadata;
  set(key: string, value: string): void;
  getMap(): Record<string, unknown>;
}

/** The slice of the etcd3 package's connection pool this wraps. */
interface Pool {
  exec(service: string, method: string, payload: unknown, options?: unknown): Promise<unknown>;
  withConnection(service: string, fn: (args: { resource: { host: string }; client: unknown; metadata: Metadata }) => unknown, shuffle?: unknown): Promise<unknown>;
}

const MEMBER = Symbol('hearth etcd member');

/**
 * The members one call already tried in its current round: the next attempt goes to another
 * one, so a round reaches every member once even when all of them look unhealthy (the pool's
 * own order is random and could pick the dead member again).
 */
const triedThisRound = new AsyncLocalStorage<Set<string>>();

/**
 * Marks the member a stream runs on unhealthy (e.g. a keepalive went unanswered on it), so the
 * stream opened next goes to another member. A stream not opened by a {@link FailoverEtcd3} is
 * ignored.
 */
export function memberFailed(client: Etcd3, stream: object): void {
  const endpoint = (stream as { [MEMBER]?: string })[MEMBER];
  if (endpoint !== undefined && client instanceof FailoverEtcd3) client.health.down(endpoint);
}

/** The etcd3 client with member failover; see the module doc. */
export class FailoverEtcd3 extends Etcd3 {
  readonly health: EndpointHealth;

  constructor(options: IOptions, failover: FailoverOptions = {}) {
    const hosts = (Array.isArray(options.hosts) ? options.hosts : [options.hosts]).map((h) => h.replace(/^https?:\/\//, ''));
    const health = new EndpointHealth(hosts, failover.unhealthyMs ?? 2_000, failover.now ?? Date.now);
    const recorder = failover.recorder;
    super({
      ...options,
      faultHandling: {
        ...options.faultHandling,
        // The pool runs every call on a member through its policy: skip it while it is unhealthy, learn from the outcome.
        host: (host: string) => memberPolicy(host.replace(/^https?:\/\//, ''), health, recorder),
      },
    });
    this.health = health;
    const pool = this.pool as unknown as Pool;
    const exec = pool.exec.bind(pool);
    const maxAttempts = hosts.length;
    const holdMs = failover.holdMs ?? 0;
    const now = failover.now ?? Date.now;
    pool.exec = async (service, method, payload, callOptions) => {
      const startedAt = now();
      let leaderless = false;
      const tried = new Set<string>();
      for (let attempt = 1, round = 1; ; attempt++) {
        try {
          return await triedThisRound.run(tried, () => exec(service, method, payload, callOptions));
        } catch (err) {
          const failure = classifyFailure(err);
          const safe = failure.notApplied || isReadOnly(method, payload);
          if (!failure.memberDown || !safe) throw err;
          leaderless ||= failure.result === 'no_leader';
          if (attempt < maxAttempts) continue;
          // Every member failed it harmlessly. During an election (a member said: no leader) hold it,
          // bounded; etcd simply down fails at once (the callers retry or answer 503 as before).
          const waitMs = Math.min(100 * 2 ** (round - 1), 1_000);
          if (!leaderless || now() - startedAt + waitMs > holdMs) throw err;
          await new Promise((r) => setTimeout(r, waitMs));
          attempt = 0;
          leaderless = false;
          tried.clear();
          round++;
        }
      }
    };
    const withConnection = pool.withConnection.bind(pool);
    // Without auth the pool makes new, empty metadata for every call; with auth it hands every
    // call the same object until it logs in again. Either way hasleader is added once, not per call.
    const withLeader = new WeakMap<Metadata, Metadata>();
    let leaderOnly: Metadata | undefined;
    const leaderMetadata = (base: Metadata): Metadata => {
      const empty = Object.keys(base.getMap()).length === 0;
      let metadata = empty ? leaderOnly : withLeader.get(base);
      if (metadata === undefined) {
        metadata = base.clone();
        metadata.set('hasleader', 'true');
        if (empty) leaderOnly = metadata;
        else withLeader.set(base, metadata);
      }
      return metadata;
    };
    const connect: Pool['withConnection'] = (service, fn, shuffle) =>
      withConnection(
        service,
        (args) => {
          const metadata = leaderMetadata(args.metadata);
          const result = fn({ ...args, metadata });
          if (result !== null && typeof result === 'object' && typeof (result as { on?: unknown }).on === 'function') {
            (result as { [MEMBER]?: string })[MEMBER] = args.resource.host;
          }
          return result;
        },
        shuffle,
      );
    // A stream (a watch, a keepalive) is opened with no shuffle of its own; it may be opened from a
    // callback born inside some call's round, and must not inherit that call's tried members.
    pool.withConnection = (service, fn, shuffle) => (shuffle === undefined ? triedThisRound.exit(() => connect(service, fn)) : connect(service, fn, shuffle));
  }
}

/** What the pool's policy hands the call: nothing ever aborts it (the call has its deadline). */
const CALL_CONTEXT = { signal: new AbortController().signal, attempt: 1 };

/** A cockatiel-shaped policy for one member (the pool calls `execute`, nothing else). */
function memberPolicy(endpoint: string, health: EndpointHealth, recorder: EtcdCallRecorder | undefined): IPolicy<IDefaultPolicyContext> {
  const policy = {
    async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => Promise<T> | T): Promise<T> {
      const tried = triedThisRound.getStore();
      if (tried?.has(endpoint) || health.skip(endpoint, tried)) throw new SkippedEndpoint(endpoint);
      tried?.add(endpoint);
      try {
        const value = await fn(CALL_CONTEXT);
        health.up(endpoint);
        recorder?.call(endpoint, 'ok');
        return value;
      } catch (err) {
        const failure = classifyFailure(err);
        if (failure.memberDown) health.down(endpoint);
        recorder?.call(endpoint, failure.result);
        throw err;
      }
    },
  };
  // The pool uses `execute` alone; the rest of cockatiel's interface (events, wrapping) is never called.
  return policy as unknown as IPolicy<IDefaultPolicyContext>;
}
