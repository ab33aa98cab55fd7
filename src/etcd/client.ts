import { readFileSync } from 'node:fs';
import { type IBackoff, noop } from 'cockatiel';
import type { Etcd3, IOptions } from 'etcd3';
import type { Config } from '../config/schema.js';
import { readSecretFileSync } from '../config/secret-file.js';
import { ConfigError } from '../errors.js';
import { type Backoff, DEFAULT_ETCD_RETRY } from '../lifecycle/retry.js';
import { type EtcdCallRecorder, FailoverEtcd3 } from './failover.js';


/** The `etcd` config slice; `passwordFile` may be left out (as by tests that build one). */
export type EtcdClientSettings = Omit<Config['etcd'], 'passwordFile'> & { readonly passwordFile?: string };

/** gRPC keepalive: a ping after this much silence on a connection (etcd's server refuses pings more often than every 5 s). */
export const GRPC_KEEPALIVE_TIME_MS = 6_000;
/** gRPC keepalive: a ping unanswered this long closes the connection (a hung member, a half-open socket). */
export const GRPC_KEEPALIVE_TIMEOUT_MS = 3_000;

/**
 * Creates the etcd client for hearth's adapters.
 *
 * Failure semantics: every unary call has a deadline of `etcd.callTimeoutMs` and fails with a
 * retryable error past it; streams (watches, keepalives) have no deadline. With several members
 * in `etcd.endpoints`, a member that is down, hung or without a leader is avoided for a while
 * and a call that failed on it is sent again to another member only where that is safe (reads;
 * writes it certainly never took) — see failover.ts. Nothing else is retried and no circuit
 * breaker opens for long: a transaction whose outcome is unknown must be reconciled by
 * re-reading, never blindly re-sent, and one failed call must not make the next seconds of
 * calls fail. gRPC keepalive pings (every {@link GRPC_KEEPALIVE_TIME_MS} of silence, answered
 * within {@link GRPC_KEEPALIVE_TIMEOUT_MS}) find a member that hangs with its connection open.
 *
 * A watch stream that broke (partition, etcd restart) is re-established after the waits of
 * `retry` (hearth's etcd retry policy, `retry.maxDelayMs` at most), not the package's up to
 * 30 s: a watch must resume soon after
 * etcd is back (orphan detection and lock waiters ride on watches), and the package's pending
 * re-establish timer is not cleared by `close()`, so its length is also how long a process
 * that lost etcd could linger after shutting down (the fault suite saw 17 s after a partition).
 *
 * `etcd.passwordFile` is read here, once: the client keeps the password for as long as it
 * lives (it logs in again with it when its auth token expires), so a rotated password takes a
 * restart. The loader checked the file at start; a file that became unreadable since throws.
 *
 * @throws ConfigError when `etcd.passwordFile` cannot be read.
 */
export function createEtcdClient(etcd: EtcdClientSettings, retry: Backoff = DEFAULT_ETCD_RETRY, recorder?: EtcdCallRecorder): Etcd3 {
  const options: IOptions = {
    hosts: [...etcd.endpoints],
    dialTimeout: etcd.callTimeoutMs,
    grpcOptions: {
      'grpc.keepalive_time_ms': GRPC_KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': GRPC_KEEPALIVE_TIMEOUT_MS,
      // etcd's default enforcement refuses pings on a connection without streams.
      'grpc.keepalive_permit_without_calls': 0,
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + etcd.callTimeoutMs }),
    faultHandling: { host: () => noop, global: noop, watchBackoff: asWatchBackoff(retry) },
  };
  if (etcd.caFile !== '') {
    options.credentials = {
      rootCertificate: readFileSync(etcd.caFile),
      ...(etcd.certFile === '' ? {} : { certChain: readFileSync(etcd.certFile), privateKey: readFileSync(etcd.keyFile) }),
    };
  }
  if (etcd.username !== '') {
    options.auth = {
      username: etcd.username,
      password: etcd.passwordFile ? passwordFromFile(etcd.passwordFile) : etcd.password,
      callOptions: () => ({ deadline: Date.now() + etcd.callTimeoutMs }),
    };
  }
  return new FailoverEtcd3(options, { holdMs: etcd.callTimeoutMs, ...(recorder ? { recorder } : {}) });
}

function passwordFromFile(file: string): string {
  const read = readSecretFileSync(file);
  if (!read.ok) throw new ConfigError([{ path: 'etcd.passwordFile', env: 'HEARTH_ETCD_PASSWORD_FILE', message: `${file} ${read.problem}` }]);
  return read.secret;
}

/** hearth's retry policy in the shape the etcd3 package's watch manager steps through. */
function asWatchBackoff(retry: Backoff, failures = 1): IBackoff<void> {
  return { duration: retry.delayMs(failures), next: () => asWatchBackoff(retry, failures + 1) };
}
