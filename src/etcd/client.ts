import { readFileSync } from 'node:fs';
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import type { Config } from '../config/schema.js';

/**
 * Creates the etcd client for hearth's adapters.
 *
 * Failure semantics: every unary call has a deadline of `etcd.callTimeoutMs` and fails with a
 * retryable error past it; streams (watches, keepalives) have no deadline. Unlike the etcd3
 * package's defaults, nothing is retried and no circuit breaker opens: a transaction whose
 * outcome is unknown must be reconciled by re-reading, never blindly re-sent, and one failed
 * call must not make the next five seconds of calls fail.
 */
export function createEtcdClient(etcd: Config['etcd']): Etcd3 {
  const options: IOptions = {
    hosts: [...etcd.endpoints],
    dialTimeout: etcd.callTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + etcd.callTimeoutMs }),
    faultHandling: { host: () => noop, global: noop },
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
      password: etcd.password,
      callOptions: () => ({ deadline: Date.now() + etcd.callTimeoutMs }),
    };
  }
  return new Etcd3(options);
}
