/**
 * `amqp.url` (and `amqp.managementUrl`) as lists: one URL per RabbitMQ node, comma-separated.
 * Pure: no I/O. The connection loop, the rules and the redaction all read a list the same way.
 */
import type { ConfigIssue } from '../errors.js';
import { redactUrl } from './redact.js';

/**
 * A comma that starts the next URL of a list: one followed by a scheme. A password may hold a
 * raw `,` (`amqp://u:p,w@host`), so a comma alone does not split.
 */
const NEXT_URL = /,\s*(?=[a-z][a-z0-9+.-]*:\/\/)/i;

/** The URLs of a comma-separated list, trimmed, empty ones dropped; `''` gives `[]`. */
export function splitUrlList(text: string): string[] {
  return text
    .split(NEXT_URL)
    .map((s) => s.trim().replace(/,+$/, '').trim())
    .filter((s) => s !== '');
}

/** Default ports of the AMQP schemes (RabbitMQ's listeners). */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'amqp:': '5672', 'amqps:': '5671', 'http:': '80', 'https:': '443' };

/**
 * `host:port` of a URL, the default port filled in: a label for logs and metrics that never
 * holds a credential (`[::1]:5672` for IPv6). `''` for text that is no URL.
 */
export function nodeOf(url: string): string {
  const parsed = parse(url);
  if (!parsed) return '';
  return `${parsed.hostname}:${parsed.port || DEFAULT_PORTS[parsed.protocol] || ''}`;
}

/** The vhost a URL names (`/` when its path is empty), percent-decoded. */
export function vhostOf(url: string): string {
  const parsed = parse(url);
  if (!parsed) return '/';
  const path = parsed.pathname.replace(/^\//, '');
  if (path === '') return '/';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Checks of `amqp.url` as a list of nodes of one cluster (each URL's credentials: credential-rules.ts). */
export function amqpUrlIssues(text: string): ConfigIssue[] {
  const urls = splitUrlList(text);
  const issue = (message: string): ConfigIssue => ({ path: 'amqp.url', env: 'HEARTH_AMQP_URL', message });
  if (urls.length === 0) return [issue('names no URL')];
  const issues: ConfigIssue[] = [];
  for (const url of urls) {
    if (!/^amqps?:\/\//i.test(url)) {
      issues.push(issue(`must be amqp:// or amqps:// URLs, one per RabbitMQ node, comma-separated; got ${shown(url)}`));
      continue;
    }
    const parsed = parse(url);
    if (!parsed || parsed.hostname === '') issues.push(issue(`${shown(url)} is not a URL with a host`));
    else if (/[,;\s]/.test(parsed.host)) issues.push(issue(`${shown(url)} names several hosts in one URL: write one URL per node, e.g. amqp://rabbit-0/vh,amqp://rabbit-1/vh`));
  }
  if (issues.length > 0) return issues;
  const schemes = new Set(urls.map((u) => u.slice(0, u.indexOf(':')).toLowerCase()));
  if (schemes.size > 1) {
    issues.push(issue('mixes amqp:// and amqps:// URLs: the nodes of one cluster are reached one way (TLS, amqp.caFile and the client certificate apply to every URL)'));
  }
  const vhosts = new Set(urls.map(vhostOf));
  if (vhosts.size > 1) {
    issues.push(issue(`names different vhosts (${[...vhosts].join(', ')}): every URL must reach the same vhost of one cluster, or the members would not share their queues`));
  }
  const nodes = urls.map(nodeOf);
  const twice = nodes.filter((n, i) => nodes.indexOf(n) !== i);
  if (twice.length > 0) issues.push(issue(`lists ${[...new Set(twice)].join(', ')} more than once`));
  return issues;
}

/** Checks of `amqp.managementUrl`: http(s) URLs of the management API, credentials whole or absent. */
export function managementUrlIssues(text: string, amqpUrl: string): ConfigIssue[] {
  const urls = splitUrlList(text);
  if (urls.length === 0) return [];
  const issue = (message: string): ConfigIssue => ({ path: 'amqp.managementUrl', env: 'HEARTH_AMQP_MANAGEMENT_URL', message });
  if (amqpUrl === '') return [issue('needs amqp.url (the management API is only polled in cluster mode)')];
  const issues: ConfigIssue[] = [];
  for (const url of urls) {
    const parsed = /^https?:\/\//i.test(url) ? parse(url) : undefined;
    if (!parsed || parsed.hostname === '' || parsed.search !== '' || parsed.hash !== '') {
      issues.push(issue(`must be http:// or https:// URLs of RabbitMQ's management API (e.g. https://rabbit-0:15671), comma-separated; got ${shown(url)}`));
    } else if ((parsed.username === '') !== (parsed.password === '')) {
      issues.push(issue(`${shown(url)} must name a user and a password together, or neither (then the AMQP user and password are used)`));
    }
  }
  return issues;
}

/** A URL quoted in an error: credentials removed, cut to a readable length. */
function shown(url: string): string {
  const text = redactUrl(url);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function parse(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
