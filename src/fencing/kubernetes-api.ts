/**
 * The one thing the `kubernetes` fence asks of the API server: read an object. A GET over
 * `node:https` with a bearer token and the cluster's CA, bounded by a timeout and an
 * AbortSignal. There is deliberately no other verb here: hearth never writes to the API server.
 */
import { request as httpsRequest } from 'node:https';
import { messageOf } from '../errors.js';

/** What one read came to: an answer with its status and JSON body, or why there is none. */
export type ApiAnswer =
  | { readonly kind: 'answer'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'failed'; readonly reason: string };

/** One read of the API server. */
export interface ApiGet {
  /** The API server's origin, `https://host:port`. */
  readonly server: URL;
  /** The object's path, already encoded, e.g. `/api/v1/namespaces/ns/pods/name`. */
  readonly path: string;
  readonly token: string;
  /** PEM certificates that may sign the API server's certificate. */
  readonly ca: Buffer;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** An object or a Status bigger than this is not what was asked for (a Node object is tens of kilobytes). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** TLS failures, by OpenSSL's code: the answer must say it is about trust, not reachability. */
const TLS_CODES = /^(ERR_TLS_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_|ERR_SSL_|HOSTNAME_MISMATCH)/;

/**
 * Reads `path` from the API server. Never throws and never retries: a transport failure, a
 * timeout or an abort is a `failed` answer saying which.
 */
export function apiGet(get: ApiGet): Promise<ApiAnswer> {
  if (get.signal.aborted) return Promise.resolve({ kind: 'failed', reason: 'aborted' });
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: ApiAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      get.signal.removeEventListener('abort', onAbort);
      resolve(answer);
      req.destroy();
    };
    const req = httpsRequest(
      {
        method: 'GET',
        hostname: get.server.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: get.server.port === '' ? 443 : Number(get.server.port),
        path: get.path,
        ca: get.ca,
        // A connection per read: reads are rare, and nothing lingers after an attempt.
        agent: false,
        headers: { authorization: `Bearer ${get.token}`, accept: 'application/json', 'user-agent': 'hearth-fence' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) finish({ kind: 'failed', reason: `the answer is larger than ${MAX_ANSWER_BYTES} bytes` });
          else chunks.push(chunk);
        });
        res.on('end', () => finish({ kind: 'answer', status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) }));
        res.on('error', (err) => finish({ kind: 'failed', reason: transportReason(err, get.server) }));
        res.on('close', () => finish({ kind: 'failed', reason: 'the connection closed before the answer was complete' }));
      },
    );
    const timer = setTimeout(() => finish({ kind: 'failed', reason: `no answer within ${get.timeoutMs} ms` }), get.timeoutMs);
    const onAbort = (): void => finish({ kind: 'failed', reason: 'aborted' });
    get.signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish({ kind: 'failed', reason: transportReason(err, get.server) }));
    req.end();
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function transportReason(err: unknown, server: URL): string {
  const code = (err as { code?: unknown }).code;
  const text = messageOf(err).slice(0, 160);
  if (typeof code === 'string' && TLS_CODES.test(code)) {
    return `TLS with ${server.origin} failed, its certificate is not trusted by fencing.kubernetes.caFile (${code}: ${text})`;
  }
  return `cannot reach the API server ${server.origin} (${typeof code === 'string' ? `${code}: ` : ''}${text})`;
}
