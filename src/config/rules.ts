import type { ConfigIssue } from '../errors.js';
import { amqpUrlIssues, managementUrlIssues } from './url-lists.js';
import { apiAuthIssues } from './api-auth.js';
import { credentialIssues } from './credential-rules.js';
import { kubernetesFenceRules } from './kubernetes-fence.js';
import type { Config } from './schema.js';

/** Checks that involve more than one option; run after each option is valid on its own. */
export function crossFieldIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const hasEtcd = config.etcd.endpoints.length > 0;
  const hasAmqp = config.amqp.url !== '';
  if (hasEtcd !== hasAmqp) {
    issues.push({
      path: hasEtcd ? 'amqp.url' : 'etcd.endpoints',
      env: hasEtcd ? 'HEARTH_AMQP_URL' : 'HEARTH_ETCD_ENDPOINTS',
      message: 'cluster mode needs both etcd.endpoints and amqp.url; set both, or neither for single-node mode',
    });
  }
  if (hasAmqp) issues.push(...amqpUrlIssues(config.amqp.url));
  issues.push(...managementUrlIssues(config.amqp.managementUrl, config.amqp.url));
  if (config.leaseTtlMs % 1_000 !== 0) {
    issues.push({
      path: 'leaseTtlMs',
      env: 'HEARTH_LEASE_TTL_MS',
      message: `must be a whole number of seconds (etcd lease TTLs are whole seconds), e.g. ${Math.max(2, Math.round(config.leaseTtlMs / 1_000)) * 1_000}; got ${config.leaseTtlMs}`,
    });
  }
  if (config.leaseMarginMs * 3 > config.leaseTtlMs) {
    issues.push({
      path: 'leaseMarginMs',
      env: 'HEARTH_LEASE_MARGIN_MS',
      message: `must be at most a third of leaseTtlMs (${config.leaseTtlMs} ms), got ${config.leaseMarginMs} ms`,
    });
  }
  if (config.orphans.autoCleanup && config.orphans.graceMs < config.leaseTtlMs) {
    issues.push({
      path: 'orphans.graceMs',
      env: 'HEARTH_ORPHANS_GRACE_MS',
      message: `must be at least leaseTtlMs (${config.leaseTtlMs} ms) when orphans.autoCleanup is on, so a restarted host can clean up its own operations first; got ${config.orphans.graceMs} ms`,
    });
  }
  if (config.backendHealth.probeTimeoutMs > config.backendHealth.checkIntervalMs) {
    issues.push({
      path: 'backendHealth.probeTimeoutMs',
      env: 'HEARTH_BACKEND_HEALTH_PROBE_TIMEOUT_MS',
      message: `must be at most backendHealth.checkIntervalMs (${config.backendHealth.checkIntervalMs} ms), so a hung probe is found before the next check; got ${config.backendHealth.probeTimeoutMs} ms`,
    });
  }
  if (config.retry.maxDelayMs < config.retry.initialDelayMs) {
    issues.push({
      path: 'retry.maxDelayMs',
      env: 'HEARTH_RETRY_MAX_DELAY_MS',
      message: `must be at least retry.initialDelayMs (${config.retry.initialDelayMs} ms), got ${config.retry.maxDelayMs} ms`,
    });
  }
  if (config.fencing.lockDelayMs !== 0 && config.fencing.lockDelayMs < config.leaseTtlMs) {
    issues.push({
      path: 'fencing.lockDelayMs',
      env: 'HEARTH_FENCING_LOCK_DELAY_MS',
      message: `must be at least leaseTtlMs (${config.leaseTtlMs} ms): a lock-delay shorter than the lease cannot outlast a process etcd has not even expired yet; got ${config.fencing.lockDelayMs} ms (0 means leaseTtlMs)`,
    });
  }
  if (config.fencing.method === 'exec' && config.fencing.exec.command === '') {
    issues.push({ path: 'fencing.exec.command', env: 'HEARTH_FENCING_EXEC_COMMAND', message: 'fencing.method exec needs the fence command' });
  }
  issues.push(...kubernetesFenceRules(config.fencing));
  if (config.roles.length === 0) {
    issues.push({ path: 'roles', env: 'HEARTH_ROLES', message: 'must name at least one of api, worker' });
  }
  if ((config.etcd.certFile === '') !== (config.etcd.keyFile === '')) {
    issues.push({ path: 'etcd.keyFile', env: 'HEARTH_ETCD_KEY_FILE', message: 'etcd.certFile and etcd.keyFile go together' });
  }
  if ((config.amqp.certFile === '') !== (config.amqp.keyFile === '')) {
    issues.push({ path: 'amqp.keyFile', env: 'HEARTH_AMQP_KEY_FILE', message: 'amqp.certFile and amqp.keyFile go together' });
  }
  for (const listener of ['api', 'ops'] as const) {
    const l = config[listener];
    if (l.headersTimeoutMs > l.requestTimeoutMs) {
      issues.push({
        path: `${listener}.headersTimeoutMs`,
        env: `HEARTH_${listener.toUpperCase()}_HEADERS_TIMEOUT_MS`,
        message: `must be at most ${listener}.requestTimeoutMs (${l.requestTimeoutMs} ms), got ${l.headersTimeoutMs} ms`,
      });
    }
  }
  issues.push(...credentialIssues(config));
  if (config.roles.includes('api')) issues.push(...apiAuthIssues(config.api, parseListen(config.api.listen).host));
  return issues;
}

/** The cluster id, `<cluster>@<backend>`. */
export function clusterId(config: Pick<Config, 'cluster' | 'backend'>): string {
  return `${config.cluster}@${config.backend}`;
}

/** The host id, `<host>@<backend>`. */
export function hostId(config: Pick<Config, 'host' | 'backend'>): string {
  return `${config.host}@${config.backend}`;
}

/** True when the configuration names etcd and RabbitMQ (cluster mode). */
export function isClustered(config: Config): boolean {
  return config.etcd.endpoints.length > 0;
}

/** Splits a `host:port` listen address. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(i + 1)) };
}
