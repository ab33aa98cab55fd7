import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatVersion, MAX_VERSION } from '../api/microversion.js';
import { loadConfig } from '../config/load.js';
import { parseListen } from '../config/rules.js';
import { CoordinatorError, type ErrorCode, messageOf, UsageError } from '../errors.js';

/** The API answered with an error; `status` and Cinder's fault message are kept. */
export class ApiError extends CoordinatorError {
  readonly status: number;

  constructor(status: number, message: string) {
    super(codeFor(status), message, { retryable: status >= 500 });
    this.status = status;
  }
}

function codeFor(status: number): ErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status >= 500) return 'BACKEND_UNAVAILABLE';
  return 'INVALID_INPUT';
}

/** Where and as whom the CLI talks to the API. */
export interface ApiClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8776`. */
  readonly url: string;
  readonly project: string;
  /** The API token (token mode); without one the client speaks Cinder's noauth as admin. */
  readonly token?: string | undefined;
  readonly timeoutMs?: number;
}

/**
 * A small client for hearth's Cinder-compatible API, as python-cinderclient calls it: the
 * token as `X-Auth-Token` (or, with none, noauth's `admin:<project>`) and the highest
 * microversion hearth serves.
 *
 * Failure semantics: an unreachable API or a timeout (`timeoutMs`, default 10 s) is a
 * retryable `BACKEND_UNAVAILABLE` error; an error answer is an {@link ApiError} carrying
 * Cinder's fault message. A `PUT` whose answer was lost may have been applied.
 */
export class ApiClient {
  private readonly root: string;
  private readonly base: string;

  constructor(private readonly options: ApiClientOptions) {
    this.root = options.url.replace(/\/+$/, '');
    this.base = `${this.root}/v3/${encodeURIComponent(options.project)}`;
  }

  get(path: string, query: Readonly<Record<string, string | undefined>> = {}): Promise<unknown> {
    return this.send('GET', `${this.base}${path}${queryString(query)}`);
  }

  put(path: string, body: unknown): Promise<unknown> {
    return this.send('PUT', `${this.base}${path}`, body);
  }

  post(path: string, body: unknown): Promise<unknown> {
    return this.send('POST', `${this.base}${path}`, body);
  }

  /** GET on hearth's own API (`/hearth/v1/…`), outside Cinder's `/v3/{project_id}`. */
  getHearth(path: string, query: Readonly<Record<string, string | undefined>> = {}): Promise<unknown> {
    return this.send('GET', `${this.root}/hearth/v1${path}${queryString(query)}`);
  }

  /** POST on hearth's own API (`/hearth/v1/…`). */
  postHearth(path: string, body?: unknown): Promise<unknown> {
    return this.send('POST', `${this.root}/hearth/v1${path}`, body);
  }

  /** DELETE on hearth's own API (`/hearth/v1/…`). */
  deleteHearth(path: string): Promise<unknown> {
    return this.send('DELETE', `${this.root}/hearth/v1${path}`);
  }

  private async send(method: string, url: string, body?: unknown): Promise<unknown> {
    const path = url.slice(this.root.length);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          'X-Auth-Token': this.options.token ?? `admin:${this.options.project}`,
          'OpenStack-API-Version': `volume ${formatVersion(MAX_VERSION)}`,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new CoordinatorError('BACKEND_UNAVAILABLE', `cannot reach the hearth API at ${this.options.url}: ${messageOf((err as { cause?: unknown }).cause ?? err)}`, {
        cause: err,
        retryable: true,
      });
    }
    const text = await res.text();
    const parsed = parseJson(text);
    if (!res.ok) throw new ApiError(res.status, faultMessage(parsed) ?? `${method} ${path} failed with HTTP ${res.status}`);
    return parsed;
  }
}

function queryString(query: Readonly<Record<string, string | undefined>>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  const qs = params.toString();
  return qs ? `?${qs}` : '';
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/** The message of a Cinder fault body `{"<name>": {"code", "message"}}`. */
function faultMessage(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const fault = Object.values(body)[0] as { message?: unknown } | undefined;
  return typeof fault?.message === 'string' ? fault.message : undefined;
}

/** Adds `--url`, `--project`, `--token-file`, `--config` and `--json` to an API command. */
export function addApiOptions(command: Command): Command {
  return command
    .option('--url <url>', 'base URL of the hearth API (default: http://<api.listen> from the configuration)')
    .option('--project <id>', 'project id in the API path', 'admin')
    .option('--token-file <file>', 'file holding the API token (default: api.tokenFile from the configuration; none: noauth)')
    .option('--config <file>', 'configuration file to read api.listen from (env: HEARTH_CONFIG)')
    .option('--json', 'print JSON for scripts instead of a table');
}

/**
 * Builds the client from the options {@link addApiOptions} added, falling back to the
 * configuration (`api.listen`, `api.tokenFile`) for what the command line does not say.
 *
 * @throws ConfigError when the configuration is invalid; UsageError when the token file cannot be read.
 */
export async function apiClientFrom(opts: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<ApiClient> {
  const project = typeof opts.project === 'string' ? opts.project : 'admin';
  const flagUrl = typeof opts.url === 'string' ? opts.url : undefined;
  const flagToken = typeof opts.tokenFile === 'string' ? opts.tokenFile : undefined;
  const config = flagUrl !== undefined && flagToken !== undefined ? undefined : await loadConfig({ file: typeof opts.config === 'string' ? opts.config : undefined, env, secretFiles: 'skip' });
  const url = flagUrl ?? `http://${reachable(config?.api.listen ?? '127.0.0.1:8776')}`;
  const tokenFile = flagToken ?? config?.api.tokenFile ?? '';
  return new ApiClient({ url, project, token: tokenFile === '' ? undefined : await readToken(tokenFile) });
}

/** `api.listen` as a client dials it: a wildcard bind address means this host's loopback. */
function reachable(listen: string): string {
  const { host, port } = parseListen(listen);
  const name = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `${name}:${port}`;
}

async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the API token file ${file}: ${messageOf(err)}`, { cause: err });
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`the API token file ${file} is empty`);
  return token;
}
