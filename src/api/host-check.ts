import { BlockList, isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { isLoopbackHost } from '../config/api-auth.js';

/**
 * Splits a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`) into a lower-case name
 * without brackets and a port (80 when absent, as HTTP says); undefined when it is not of that
 * form.
 */
export function parseHostHeader(value: string): { readonly name: string; readonly port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(value);
  if (!m) return undefined;
  const name = (m[1] as string).toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const port = m[2] === undefined ? 80 : Number(m[2]);
  return port <= 65_535 ? { name, port } : undefined;
}

/**
 * Which Host (and Origin) values a noauth API accepts. Noauth makes every caller an admin and is
 * allowed on loopback only, but loopback alone does not keep web pages out: a page the operator
 * opens can point a DNS name it controls at 127.0.0.1 (DNS rebinding) and send requests whose
 * Host is that name. So only names that cannot be rebound are accepted — `localhost`,
 * 127.0.0.0/8 and `[::1]`, with the port the request arrived on — plus the values an operator
 * lists (`api.allowedHosts`, e.g. an SSH tunnel's `localhost:18776`).
 */
export class HostCheck {
  private readonly extra: ReadonlySet<string>;

  constructor(allowedHosts: readonly string[] = []) {
    this.extra = new Set(allowedHosts.map((h) => h.toLowerCase()));
  }

  /**
   * True when `host` (a Host header value) may reach the noauth API on `localPort`, the port the
   * connection was accepted on (undefined for in-process requests, where only the name counts).
   */
  accepts(host: string | undefined, localPort: number | undefined): boolean {
    if (host === undefined || host === '') return false;
    if (this.extra.has(host.toLowerCase())) return true;
    const parsed = parseHostHeader(host);
    if (!parsed || !isLoopbackHost(parsed.name)) return false;
    return localPort === undefined || parsed.port === localPort;
  }

  /** True when a request's `Origin` header (absent for non-browser clients) is acceptable. */
  acceptsOrigin(origin: string | undefined, localPort: number | undefined): boolean {
    if (origin === undefined) return true;
    const m = /^http:\/\/([^/]+)$/i.exec(origin);
    return m !== null && this.accepts(m[1], localPort);
  }
}

/**
 * Where the links in responses (version document, volume and snapshot views, next-page links)
 * point: `api.publicUrl`, never the request's Host header, which the client chooses. Behind a
 * reverse proxy listed in `api.trustedProxies`, the proxy's `X-Forwarded-Proto` and
 * `X-Forwarded-Host` are used instead, when they are well-formed.
 */
export class PublicLinks {
  private readonly base: string;
  private readonly proxies: BlockList | undefined;

  constructor(publicUrl: string, trustedProxies: readonly string[] = []) {
    this.base = publicUrl.replace(/\/+$/, '');
    if (trustedProxies.length > 0) {
      const list = new BlockList();
      for (const entry of trustedProxies) {
        const [address = '', bits] = entry.split('/');
        const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
        if (bits === undefined) list.addAddress(address, family);
        else list.addSubnet(address, Number(bits), family);
      }
      this.proxies = list;
    }
  }

  /** The base URL (`http://host:port[/path]`, no trailing slash) for links in this request's answer. */
  baseFor(req: FastifyRequest): string {
    if (!this.proxies) return this.base;
    const remote = req.socket.remoteAddress;
    if (remote === undefined || !this.proxies.check(remote.replace(/^::ffff:/, ''), isIP(remote.replace(/^::ffff:/, '')) === 6 ? 'ipv6' : 'ipv4')) return this.base;
    const host = firstValue(req.headers['x-forwarded-host']);
    const proto = (firstValue(req.headers['x-forwarded-proto']) ?? 'http').toLowerCase();
    if (host === undefined || !parseHostHeader(host) || (proto !== 'http' && proto !== 'https')) return this.base;
    return `${proto}://${host}`;
  }
}

/** The first of a possibly repeated or comma-joined header, trimmed. */
function firstValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v?.split(',')[0]?.trim() || undefined;
}

/**
 * `api.publicUrl`, or when it is empty `http://<api.listen>`, with a wildcard address read as
 * loopback (a link to 0.0.0.0 reaches nothing).
 */
export function defaultPublicUrl(publicUrl: string, listen: string): string {
  if (publicUrl !== '') return publicUrl.replace(/\/+$/, '');
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i);
  const port = listen.slice(i + 1);
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' || host === '::' ? '[::1]' : host;
  return `http://${shown}:${port}`;
}
