import { Counter, type Registry } from 'prom-client';
import type { EtcdCallRecorder, FailureClass } from './failover.js';

/**
 * `hearth_etcd_calls_total{endpoint,result}`: calls (and stream openings) this process made to
 * each etcd member, by outcome — where the calls went while a member was down or without a
 * leader. `endpoint` is one of `etcd.endpoints` (host:port), so the label stays bounded.
 */
export class EtcdClientMetrics implements EtcdCallRecorder {
  readonly calls: Counter<'endpoint' | 'result'>;

  constructor(registry: Registry, endpoints: readonly string[]) {
    this.calls = new Counter({
      name: 'hearth_etcd_calls_total',
      help: 'etcd calls by member (endpoint) and result: ok, unavailable, deadline, no_leader, error.',
      labelNames: ['endpoint', 'result'] as const,
      registers: [registry],
    });
    for (const endpoint of endpoints) this.calls.inc({ endpoint: endpoint.replace(/^https?:\/\//, ''), result: 'ok' }, 0);
  }

  call(endpoint: string, result: 'ok' | FailureClass['result']): void {
    this.calls.inc({ endpoint, result });
  }
}
