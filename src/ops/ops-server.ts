import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseListen } from '../config/rules.js';
import { BackendUnavailableError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Health, Report } from './health.js';

/**
 * The operations listener: `/metrics`, `/livez` and `/readyz` on their own port, on a bare
 * node:http server so that nothing in the API (auth, body parsing) can break the probes.
 * `?verbose` on a probe prints one line per check for people.
 */
export class OpsServer {
  private readonly server: Server;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly health: Health,
    private readonly logger: Logger,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err }, 'ops request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
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
    const url = new URL(req.url ?? '/', 'http://ops');
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

function writeReport(res: ServerResponse, report: Report, verbose: boolean): void {
  const status = report.ok ? 200 : 503;
  if (!verbose) {
    res.writeHead(status, { 'content-type': 'text/plain' }).end(report.ok ? 'ok\n' : 'not ok\n');
    return;
  }
  const lines = Object.entries(report.checks).map(
    ([name, r]) => `[${r.ok ? '+' : '-'}]${name} ${r.ok ? 'ok' : `failed${r.detail ? `: ${r.detail}` : ''}`}`,
  );
  lines.push(report.ok ? 'check passed' : 'check failed');
  res.writeHead(status, { 'content-type': 'text/plain' }).end(`${lines.join('\n')}\n`);
}
