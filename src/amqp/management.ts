/**
 * Reads from RabbitMQ's management HTTP API (`amqp.managementUrl`): GET only, JSON, one node of
 * the list after the other until one answers. hearth uses it to see what AMQP does not show: how
 * many replicas its quorum queues have and how many of them are online.
 *
 * Credentials: the management URL's own user and password, else the AMQP user (of the first
 * `amqp.url`) with its password (`amqp.passwordFile`, re-read on every request, or the URL's).
 * TLS for `https://`: the CA in `amqp.caFile`, the client certificate in `amqp.certFile` and
 * `amqp.keyFile`. Nothing here logs or returns a password; failures name the node (`host:port`).
 */
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { nodeOf, splitUrlList } from '../config/url-lists.js';
import { readSecretFile } from '../config/secret-file.js';
import { BackendAccessError, BackendUnavailableError, messageOf } from '../errors.js';

/** What {@link ManagementApi} is built from: the `amqp` config slice. */
export interface ManagementSettings {
  /** `amqp.managementUrl`: one URL per node, comma-separated. */
  readonly managementUrl: string;
  /** `amqp.url`, for the AMQP user when the management URL names none. */
  readonly url: string;
  readonly passwordFile?: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Bound of one request to one node. */
  readonly timeoutMs: number;
}

/** One answer: its HTTP status and JSON body (undefined when it was no JSON), and who gave it. */
export interface ManagementAnswer {
  readonly status: number;
  readonly body: unknown;
  /** `host:port` of the node that answered. */
  readonly node: string;
}

/** The one thing the replica monitor asks of the management API. */
export interface ManagementReader {
  /**
   * GETs `path` (encoded, e.g. `/api/queues/%2F/q`) from the first node that answers.
   *
   * @throws BackendUnavailableError when no node answers; BackendAccessError on 401/403.
   */
  get(path: string, signal: AbortSignal): Promise<ManagementAnswer>;
}

/** An answer bigger than this is not what was asked for (a queue's object is a few KiB). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** See the module doc. */
export class ManagementApi implements ManagementReader {
  private readonly urls: URL[];
  /** The node that answered last: asked first next time. */
  private preferred = 0;

  constructor(private readonly settings: ManagementSettings) {
    this.urls = splitUrlList(settings.managementUrl).map((u) => new URL(u));
    if (this.urls.length === 0) throw new RangeError('amqp.managementUrl names no URL');
  }

  async get(path: string, signal: AbortSignal): Promise<ManagementAnswer> {
    const reasons: string[] = [];
    for (let i = 0; i < this.urls.length; i++) {
      const index = (this.preferred + i) % this.urls.length;
      const base = this.urls[index] as URL;
      const node = nodeOf(base.href);
      let answer: { status: number; body: unknown };
      try {
        answer = await this.request(base, path, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        reasons.push(`${node}: ${messageOf(err)}`);
        continue;
      }
      if (answer.status === 401 || answer.status === 403) {
        throw new BackendAccessError(
          'amqp',
          'credentials',
          `the RabbitMQ management API on ${node} refused the user (HTTP ${answer.status}): it needs the monitoring tag (rabbitmqctl set_user_tags) and access to the vhost`,
        );
      }
      if (answer.status >= 500) {
        reasons.push(`${node}: HTTP ${answer.status}`);
        continue;
      }
      this.preferred = index;
      return { ...answer, node };
    }
    throw new BackendUnavailableError('amqp', `no RabbitMQ management API answered (${reasons.join('; ')})`);
  }

  private async request(base: URL, path: string, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
    const https = base.protocol === 'https:';
    const options: RequestOptions & { ca?: Buffer[]; cert?: Buffer; key?: Buffer } = {
      method: 'GET',
      hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: base.port === '' ? (https ? 443 : 80) : Number(base.port),
      path: `${base.pathname.replace(/\/$/, '')}${path}`,
      // A connection per request: polls are minutes apart.
      agent: false,
      headers: { accept: 'application/json', authorization: await this.authorization(base), 'user-agent': 'hearth' },
    };
    if (https) {
      if (this.settings.caFile) options.ca = [await readFile(this.settings.caFile)];
      if (this.settings.certFile) {
        options.cert = await readFile(this.settings.certFile);
        options.key = await readFile(this.settings.keyFile);
      }
    }
    return send(https, options, this.settings.timeoutMs, signal);
  }

  /** `Basic …` for the management URL's user, else the AMQP user. */
  private async authorization(base: URL): Promise<string> {
    let user = decode(base.username);
    let password = decode(base.password);
    if (user === '') {
      const amqp = new URL(splitUrlList(this.settings.url)[0] ?? 'amqp://localhost');
      user = decode(amqp.username);
      password = decode(amqp.password);
      if (this.settings.passwordFile) {
        const read = await readSecretFile(this.settings.passwordFile);
        if (!read.ok) throw new BackendAccessError('amqp', 'credentials', `amqp.passwordFile ${this.settings.passwordFile} ${read.problem}`);
        password = read.secret;
      }
    }
    return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  }
}

/** One GET, bounded by `timeoutMs` and `signal`; resolves with the status and parsed body. */
function send(https: boolean, options: RequestOptions, timeoutMs: number, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, answer?: { status: number; body: unknown }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      if (err) reject(err);
      else resolve(answer as { status: number; body: unknown });
    };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) finish(new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) }));
      res.on('error', (err) => finish(err));
    };
    const req = https ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => finish(new Error('aborted', { cause: signal.reason }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    // Only the error's code or text: a library's error may quote the request.
    req.on('error', (err: NodeJS.ErrnoException) => finish(new Error(err.code ?? messageOf(err))));
    req.end();
  });
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
