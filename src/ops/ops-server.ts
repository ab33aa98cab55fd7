import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseListen } from '../config/rules.js';
import { BackendUnavailableError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Health, Report } from './health.js';
import { createLimitedServer, type ListenerLimits, writeClientError } from './listener-limits.js';

const DEFAULT_LIMITS: ListenerLimits = { requestTimeoutMs: 10_000, headersTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000, maxConnections: 64 };

/** The {@link ListenerLimits} of the ops listener from `ops.*` options. */
export function opsLimits(ops: ListenerLimits): ListenerLimits {
  return { requestTimeoutMs: ops.requestTimeoutMs, headersTimeoutMs: ops.headersTimeoutMs, keepAliveTimeoutMs: ops.keepAliveTimeoutMs, maxConnections: ops.maxConnections };
}

/**
 * The operations listener: `/metrics`, `/livez` and `/readyz` on their own port, on a bare
 * node:http server so that nothing in the API (auth, body parsing) can break the probes.
 * `?verbose` on a probe prints one line per check for people: its name and state only (checks
 * that are shown but not counted say so: `[-]backend failed (not counted)`). The
 * port is unauthenticated, so a check's detail (a dependency's error, which can name addresses)
 * goes to the log, never into an answer. A request it cannot parse (an absolute-form URL it
 * cannot read, a malformed request line) is a 400; the listener has its own timeouts and
 * connection limit ({@link ListenerLimits}).
 */
export class OpsServer {
  private readonly server: Server;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly health: Health,
    private readonly logger: Logger,
    limits: ListenerLimits = DEFAULT_LIMITS,
  ) {
    this.server = createLimitedServer(limits, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err }, 'ops request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) =>
      writeClientError(err, socket, (status) => ({ status, contentType: 'text/plain', body: `${status === 408 ? 'request timeout' : 'bad request'}\n` })),
    );
  }

  /** Listens on `host:port`; resolves with the bound address. */
  async listen(listen: string): Promise<AddressInfo> {
    const { host, port } = parseListen(listen);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err) => reject(new BackendUnavailableError('filesystem', `ops listener ${listen}: ${err.message}`, { cause: err })));
      this.server.listen(port, host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = parseRequestUrl(req.url);
    if (!url) {
      res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' }).end('bad request\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (url.pathname) {
      case '/metrics': {
        const body = await this.registry.metrics();
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
        return;
      }
      case '/livez':
        writeReport(res, this.health.live(), url.searchParams.has('verbose'));
        return;
      case '/readyz':
        writeReport(res, this.health.ready(), url.searchParams.has('verbose'));
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }
}

/** The request target (origin-form or absolute-form) as a URL; undefined when it cannot be read. */
function parseRequestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://ops');
  } catch {
    return undefined;
  }
}

function writeReport(res: ServerResponse, report: Report, verbose: boolean): void {
  const status = report.ok ? 200 : 503;
  if (!verbose) {
    res.writeHead(status, { 'content-type': 'text/plain' }).end(report.ok ? 'ok\n' : 'not ok\n');
    return;
  }
  const lines = Object.entries(report.checks).map(([name, r]) => `[${r.ok ? '+' : '-'}]${name} ${r.ok ? 'ok' : 'failed'}`);
  // Shown, not counted: the state an operator should see, e.g. `[-]backend failed (not counted)`.
  for (const [name, r] of Object.entries(report.informational ?? {})) lines.push(`[${r.ok ? '+' : '-'}]${name} ${r.ok ? 'ok' : 'failed'} (not counted)`);
  lines.push(report.ok ? 'check passed' : 'check failed');
  res.writeHead(status, { 'content-type': 'text/plain' }).end(`${lines.join('\n')}\n`);
}
