import type { ConfigIssue } from '../errors.js';
import { nodeOf, splitUrlList } from './url-lists.js';
import { redactUrl } from './redact.js';
import type { Config } from './schema.js';

/**
 * Rules on how etcd and RabbitMQ credentials are given: each secret in exactly one place
 * (the option or its file), and a password only together with the user it belongs to.
 */
export function credentialIssues(config: Pick<Config, 'etcd' | 'amqp'>): ConfigIssue[] {
  return [...etcdIssues(config.etcd), ...amqpIssues(config.amqp)];
}

function etcdIssues(etcd: Config['etcd']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  // etcd3 hands the endpoint to gRPC as a target: a user:password in it is never used to log in,
  // but it is written into every connection error. Refuse it, and say where credentials go.
  const credentialed = etcd.endpoints.filter((e) => e.includes('@'));
  if (credentialed.length > 0) {
    issues.push({
      path: 'etcd.endpoints',
      env: 'HEARTH_ETCD_ENDPOINTS',
      message:
        `must not hold a user or password (${credentialed.map(redactUrl).join(', ')}): etcd does not read credentials from the URL; ` +
        'set etcd.username and etcd.passwordFile (or certificates: etcd.certFile, etcd.keyFile)',
    });
  }
  if (etcd.password !== '' && etcd.passwordFile !== '') {
    issues.push({ path: 'etcd.passwordFile', env: 'HEARTH_ETCD_PASSWORD_FILE', message: 'set etcd.password or etcd.passwordFile, not both' });
  }
  const hasPassword = etcd.password !== '' || etcd.passwordFile !== '';
  if ((etcd.username === '') === hasPassword) {
    issues.push({
      path: hasPassword ? 'etcd.username' : 'etcd.passwordFile',
      env: hasPassword ? 'HEARTH_ETCD_USERNAME' : 'HEARTH_ETCD_PASSWORD_FILE',
      message: 'etcd.username and etcd.password (or etcd.passwordFile) go together',
    });
  }
  return issues;
}

function amqpIssues(amqp: Config['amqp']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const issue = (message: string): void => void issues.push({ path: 'amqp.passwordFile', env: 'HEARTH_AMQP_PASSWORD_FILE', message });
  if (amqp.url === '') {
    if (amqp.passwordFile !== '') issue('amqp.passwordFile needs amqp.url');
    return issues;
  }
  // Every URL of the list is checked: the password file applies to each of them.
  const urls = splitUrlList(amqp.url)
    .map(parseUrl)
    .filter((u): u is URL => u !== undefined); // A URL that does not parse: its own rule reports it.
  const several = urls.length > 1;
  const which = (url: URL): string => (several ? ` (${nodeOf(url.href)})` : '');
  for (const url of urls) {
    if (amqp.passwordFile !== '') {
      if (url.password !== '') issue(`amqp.url${which(url)} holds a password too; keep it in amqp.passwordFile only`);
      if (url.username === '') issue(`amqp.passwordFile needs the user name in amqp.url${several ? ` (in every URL; ${nodeOf(url.href)} has none)` : ''}, e.g. amqps://hearth@rabbitmq:5671/hearth`);
    } else if (url.username !== '' && url.password === '' && amqp.certFile === '') {
      issues.push({
        path: 'amqp.url',
        env: 'HEARTH_AMQP_URL',
        message: `names the user ${decodeURIComponent(url.username)}${which(url)} but no password: set amqp.passwordFile, or amqp.certFile and amqp.keyFile to log in with the certificate (EXTERNAL)`,
      });
    }
  }
  return issues;
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
